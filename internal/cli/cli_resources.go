package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

func resourceCommands() map[string]clientCommand {
	return map[string]clientCommand{
		"contexts create": {argsHelp: "no arguments", flags: func(fs *flag.FlagSet, cl *cli) {
			fs.StringVar(&cl.ctxName, "name", "", "a name, unique in the project")
		}, run: cmdContextCreate},
		"contexts get":      {minArgs: 1, maxArgs: 1, argsHelp: "one context ID", flags: noFlags, run: cmdContextGet},
		"contexts update":   {minArgs: 1, maxArgs: 1, argsHelp: "one context ID", flags: noFlags, run: cmdContextUpdate},
		"contexts delete":   {minArgs: 1, maxArgs: 1, argsHelp: "one context ID", flags: noFlags, run: cmdDeleter("contexts")},
		"extensions upload": {minArgs: 1, maxArgs: 1, argsHelp: "one .zip file", flags: noFlags, run: cmdExtensionUpload},
		"extensions get":    {minArgs: 1, maxArgs: 1, argsHelp: "one extension ID", flags: noFlags, run: cmdExtensionGet},
		"extensions delete": {minArgs: 1, maxArgs: 1, argsHelp: "one extension ID", flags: noFlags, run: cmdDeleter("extensions")},
		"projects list":     {argsHelp: "no arguments", flags: noFlags, run: cmdProjectList},
		"projects get":      {maxArgs: 1, argsHelp: "at most one project ID", flags: noFlags, run: cmdProjectGet},
		"projects usage":    {maxArgs: 1, argsHelp: "at most one project ID", flags: noFlags, run: cmdProjectUsage},
	}
}

type cliContext struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ProjectID string `json:"projectId"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

type cliContextKeys struct {
	ID                       string `json:"id"`
	CipherAlgorithm          string `json:"cipherAlgorithm"`
	InitializationVectorSize int    `json:"initializationVectorSize"`
}

func cmdContextCreate(ctx context.Context, cl *cli, _ []string) error {
	body := map[string]string{}
	if cl.ctxName != "" {
		body["name"] = cl.ctxName
	}
	b, err := cl.call(ctx, http.MethodPost, "/v1/contexts", nil, body, http.StatusCreated)
	if err != nil {
		return err
	}
	var k cliContextKeys
	return cl.output(b, &k, func() error { return cl.printContextKeys(k) })
}

func cmdContextUpdate(ctx context.Context, cl *cli, args []string) error {
	b, err := cl.call(ctx, http.MethodPut, "/v1/contexts/"+url.PathEscape(args[0]), nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var k cliContextKeys
	return cl.output(b, &k, func() error { return cl.printContextKeys(k) })
}

func (cl *cli) printContextKeys(k cliContextKeys) error {
	t := cl.table()
	t.pair("id", k.ID)
	t.pair("upload cipher", fmt.Sprintf("%s, %d-byte IV (legacy; use sessions with persist instead)", k.CipherAlgorithm, k.InitializationVectorSize))
	return t.flush()
}

func cmdContextGet(ctx context.Context, cl *cli, args []string) error {
	b, err := cl.call(ctx, http.MethodGet, "/v1/contexts/"+url.PathEscape(args[0]), nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var c cliContext
	return cl.output(b, &c, func() error {
		t := cl.table()
		t.pair("id", c.ID)
		t.pair("name", c.Name)
		t.pair("project", c.ProjectID)
		t.pair("created", c.CreatedAt)
		t.pair("updated", c.UpdatedAt)
		return t.flush()
	})
}

// cmdDeleter returns the run function of `<resource> delete ID` (204 on success).
func cmdDeleter(resource string) func(ctx context.Context, cl *cli, args []string) error {
	return func(ctx context.Context, cl *cli, args []string) error {
		if _, err := cl.call(ctx, http.MethodDelete, "/v1/"+resource+"/"+url.PathEscape(args[0]), nil, nil, http.StatusNoContent); err != nil {
			return err
		}
		if cl.json {
			_, err := fmt.Fprintf(cl.stdout, "{\"deleted\": %q}\n", args[0])
			return err
		}
		_, err := fmt.Fprintf(cl.stdout, "deleted %s\n", args[0])
		return err
	}
}

type cliExtension struct {
	ID        string `json:"id"`
	FileName  string `json:"fileName"`
	ProjectID string `json:"projectId"`
	CreatedAt string `json:"createdAt"`
}

func (cl *cli) printExtension(e cliExtension) error {
	t := cl.table()
	t.pair("id", e.ID)
	t.pair("file", e.FileName)
	t.pair("project", e.ProjectID)
	t.pair("created", e.CreatedAt)
	return t.flush()
}

func cmdExtensionUpload(ctx context.Context, cl *cli, args []string) error {
	b, err := cl.uploadFile(ctx, "/v1/extensions", args[0])
	if err != nil {
		return err
	}
	var e cliExtension
	return cl.output(b, &e, func() error { return cl.printExtension(e) })
}

func cmdExtensionGet(ctx context.Context, cl *cli, args []string) error {
	b, err := cl.call(ctx, http.MethodGet, "/v1/extensions/"+url.PathEscape(args[0]), nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var e cliExtension
	return cl.output(b, &e, func() error { return cl.printExtension(e) })
}

type cliProject struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Concurrency    int    `json:"concurrency"`
	DefaultTimeout int    `json:"defaultTimeout"`
	CreatedAt      string `json:"createdAt"`
}

func cmdProjectList(ctx context.Context, cl *cli, _ []string) error {
	b, err := cl.call(ctx, http.MethodGet, "/v1/projects", nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var ps []cliProject
	return cl.output(b, &ps, func() error {
		t := cl.table("ID", "CONCURRENCY", "TIMEOUT", "CREATED", "NAME")
		for _, p := range ps {
			t.row(p.ID, strconv.Itoa(p.Concurrency), strconv.Itoa(p.DefaultTimeout)+"s", p.CreatedAt, p.Name)
		}
		return t.flush()
	})
}

// projectID returns args[0], or the API key's project: the one project it may see.
func (cl *cli) projectID(ctx context.Context, args []string) (string, error) {
	if len(args) > 0 {
		return args[0], nil
	}
	var ps []cliProject
	b, err := cl.call(ctx, http.MethodGet, "/v1/projects", nil, nil, http.StatusOK)
	if err == nil {
		err = jsonUnmarshal(b, &ps)
	}
	if err != nil {
		return "", err
	}
	if len(ps) != 1 {
		return "", usageError{fmt.Errorf("the API key sees %d projects: name one", len(ps))}
	}
	return ps[0].ID, nil
}

func cmdProjectGet(ctx context.Context, cl *cli, args []string) error {
	id, err := cl.projectID(ctx, args)
	if err != nil {
		return err
	}
	b, err := cl.call(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(id), nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var p cliProject
	return cl.output(b, &p, func() error {
		t := cl.table()
		t.pair("id", p.ID)
		t.pair("name", p.Name)
		t.pair("concurrency", strconv.Itoa(p.Concurrency))
		t.pair("default timeout", strconv.Itoa(p.DefaultTimeout)+"s")
		t.pair("created", p.CreatedAt)
		return t.flush()
	})
}

func cmdProjectUsage(ctx context.Context, cl *cli, args []string) error {
	id, err := cl.projectID(ctx, args)
	if err != nil {
		return err
	}
	b, err := cl.call(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(id)+"/usage", nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var u struct {
		BrowserMinutes int64 `json:"browserMinutes"`
		ProxyBytes     int64 `json:"proxyBytes"`
	}
	return cl.output(b, &u, func() error {
		t := cl.table()
		t.pair("project", id)
		t.pair("browser minutes", strconv.FormatInt(u.BrowserMinutes, 10))
		t.pair("proxy bytes", strconv.FormatInt(u.ProxyBytes, 10))
		return t.flush()
	})
}
