package client

import (
	"context"
	"io"
	"net/http"
)

// CreateContext creates a context (POST /v1/contexts, spec §6.1); name, unique in the
// project, may be "".
func (c *Client) CreateContext(ctx context.Context, name string) (*ContextKeys, error) {
	body := map[string]string{}
	if name != "" {
		body["name"] = name
	}
	var k ContextKeys
	if err := c.call(ctx, http.MethodPost, "/v1/contexts", nil, body, http.StatusCreated, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Context returns a context (GET /v1/contexts/{id}, spec §6.2).
func (c *Client) Context(ctx context.Context, id string) (*Context, error) {
	var x Context
	if err := c.call(ctx, http.MethodGet, "/v1/contexts/"+pathID(id), nil, nil, http.StatusOK, &x); err != nil {
		return nil, err
	}
	return &x, nil
}

// UpdateContext calls the deprecated PUT /v1/contexts/{id} (spec §6.3), which returns
// new upload keys; sessions with persist replace it.
func (c *Client) UpdateContext(ctx context.Context, id string) (*ContextKeys, error) {
	var k ContextKeys
	if err := c.call(ctx, http.MethodPut, "/v1/contexts/"+pathID(id), nil, nil, http.StatusOK, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// DeleteContext deletes a context (DELETE /v1/contexts/{id}, spec §6.4).
func (c *Client) DeleteContext(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/contexts/"+pathID(id), nil, nil, http.StatusNoContent, nil)
}

// UploadExtension uploads an extension's .zip as the file name (POST /v1/extensions,
// spec §6.5). r is not read after the call returns.
func (c *Client) UploadExtension(ctx context.Context, name string, r io.Reader) (*Extension, error) {
	var e Extension
	if err := c.upload(ctx, "/v1/extensions", name, r, http.StatusOK, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Extension returns an extension (GET /v1/extensions/{id}, spec §6.6).
func (c *Client) Extension(ctx context.Context, id string) (*Extension, error) {
	var e Extension
	if err := c.call(ctx, http.MethodGet, "/v1/extensions/"+pathID(id), nil, nil, http.StatusOK, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DeleteExtension deletes an extension (DELETE /v1/extensions/{id}, spec §6.7).
func (c *Client) DeleteExtension(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/extensions/"+pathID(id), nil, nil, http.StatusNoContent, nil)
}

// Projects lists the projects the API key may see (GET /v1/projects, spec §6.8): with
// browserd's keys, the key's own project.
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var ps []Project
	if err := c.call(ctx, http.MethodGet, "/v1/projects", nil, nil, http.StatusOK, &ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// Project returns a project (GET /v1/projects/{id}, spec §6.9).
func (c *Client) Project(ctx context.Context, id string) (*Project, error) {
	var p Project
	if err := c.call(ctx, http.MethodGet, "/v1/projects/"+pathID(id), nil, nil, http.StatusOK, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ProjectUsage returns a project's usage (GET /v1/projects/{id}/usage, spec §6.10).
func (c *Client) ProjectUsage(ctx context.Context, id string) (*ProjectUsage, error) {
	var u ProjectUsage
	if err := c.call(ctx, http.MethodGet, "/v1/projects/"+pathID(id)+"/usage", nil, nil, http.StatusOK, &u); err != nil {
		return nil, err
	}
	return &u, nil
}
