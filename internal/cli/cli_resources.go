package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/browserd/browserd/internal/client"
)

func resourceCommands() map[string]clientCommand {
	return map[string]clientCommand{
		"contexts create": {argsHelp: "no arguments", flags: func(fs *flag.FlagSet, cl *cli) {
			fs.StringVar(&cl.ctxName, "name", "", "a name, unique in the project")
		}, run: cmdContextCreate},
		"contexts get":      {minArgs: 1, maxArgs: 1, argsHelp: "one context ID", flags: noFlags, run: cmdContextGet},
		"contexts update":   {minArgs: 1, maxArgs: 1, argsHelp: "one context ID", flags: noFlags, run: cmdContextUpdate},
		"contexts delete":   {minArgs: 1, maxArgs: 1, argsHelp: "one context ID", flags: noFlags, run: cmdDeleter((*client.Client).DeleteContext)},
		"extensions upload": {minArgs: 1, maxArgs: 1, argsHelp: "one .zip file", flags: noFlags, run: cmdExtensionUpload},
		"extensions get":    {minArgs: 1, maxArgs: 1, argsHelp: "one extension ID", flags: noFlags, run: cmdExtensionGet},
		"extensions delete": {minArgs: 1, maxArgs: 1, argsHelp: "one extension ID", flags: noFlags, run: cmdDeleter((*client.Client).DeleteExtension)},
		"projects list":     {argsHelp: "no arguments", flags: noFlags, run: cmdProjectList},
		"projects get":      {maxArgs: 1, argsHelp: "at most one project ID", flags: noFlags, run: cmdProjectGet},
		"projects usage":    {maxArgs: 1, argsHelp: "at most one project ID", flags: noFlags, run: cmdProjectUsage},
	}
}

func cmdContextCreate(ctx context.Context, cl *cli, _ []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	k, err := cl.api.CreateContext(ctx, cl.ctxName)
	return cl.output(err, func() error { return cl.printContextKeys(k) })
}

func cmdContextUpdate(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	k, err := cl.api.UpdateContext(ctx, args[0])
	return cl.output(err, func() error { return cl.printContextKeys(k) })
}

func (cl *cli) printContextKeys(k *client.ContextKeys) error {
	t := cl.table()
	t.pair("id", k.ID)
	t.pair("upload cipher", fmt.Sprintf("%s, %d-byte IV (legacy; use sessions with persist instead)", k.CipherAlgorithm, k.InitializationVectorSize))
	return t.flush()
}

func cmdContextGet(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	c, err := cl.api.Context(ctx, args[0])
	return cl.output(err, func() error {
		t := cl.table()
		t.pair("id", c.ID)
		t.pair("name", c.Name)
		t.pair("project", c.ProjectID)
		t.pair("created", c.CreatedAt)
		t.pair("updated", c.UpdatedAt)
		return t.flush()
	})
}

// cmdDeleter returns the run function of `<resource> delete ID`, which deletes with del.
func cmdDeleter(del func(api *client.Client, ctx context.Context, id string) error) func(ctx context.Context, cl *cli, args []string) error {
	return func(ctx context.Context, cl *cli, args []string) error {
		ctx, cancel := cl.withTimeout(ctx)
		defer cancel()
		if err := del(cl.api, ctx, args[0]); err != nil {
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

func (cl *cli) printExtension(e *client.Extension) error {
	t := cl.table()
	t.pair("id", e.ID)
	t.pair("file", e.FileName)
	t.pair("project", e.ProjectID)
	t.pair("created", e.CreatedAt)
	return t.flush()
}

func cmdExtensionUpload(ctx context.Context, cl *cli, args []string) error {
	var e *client.Extension
	err := cl.uploadFile(ctx, args[0], func(ctx context.Context, name string, r io.Reader) (err error) {
		e, err = cl.api.UploadExtension(ctx, name, r)
		return err
	})
	return cl.output(err, func() error { return cl.printExtension(e) })
}

func cmdExtensionGet(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	e, err := cl.api.Extension(ctx, args[0])
	return cl.output(err, func() error { return cl.printExtension(e) })
}

func cmdProjectList(ctx context.Context, cl *cli, _ []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	ps, err := cl.api.Projects(ctx)
	return cl.output(err, func() error {
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
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	ps, err := cl.api.Projects(ctx)
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
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	p, err := cl.api.Project(ctx, id)
	return cl.output(err, func() error {
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
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	u, err := cl.api.ProjectUsage(ctx, id)
	return cl.output(err, func() error {
		t := cl.table()
		t.pair("project", id)
		t.pair("browser minutes", strconv.FormatInt(u.BrowserMinutes, 10))
		t.pair("proxy bytes", strconv.FormatInt(u.ProxyBytes, 10))
		return t.flush()
	})
}
