package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// logFields is what the access log line tells besides the request itself, filled in
// while the request is served (authenticate sets the project).
type logFields struct {
	projectID string
}

type logFieldsKey struct{}

func withLogFields(ctx context.Context) (context.Context, *logFields) {
	lf := &logFields{}
	return context.WithValue(ctx, logFieldsKey{}, lf), lf
}

// setLogProject records the project of the request's API key for the access log.
func setLogProject(ctx context.Context, projectID string) {
	if lf, ok := ctx.Value(logFieldsKey{}).(*logFields); ok {
		lf.projectID = projectID
	}
}

// idKeys names the {id} of each resource in log lines, as the rest of browserd does.
var idKeys = map[string]string{"sessions": "session_id", "contexts": "context_id", "extensions": "extension_id"}

// accessAttrs returns the route, the project and the resource id of a served request:
// req is the request the mux matched, so its Pattern and path values are set.
func accessAttrs(req *http.Request, lf *logFields) []slog.Attr {
	var attrs []slog.Attr
	if req.Pattern != "" {
		attrs = append(attrs, slog.String("route", req.Pattern))
	}
	if lf.projectID != "" {
		attrs = append(attrs, slog.String("project_id", lf.projectID))
	}
	if id := req.PathValue("id"); id != "" {
		_, path, _ := strings.Cut(req.Pattern, " ")
		resource, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), "/")
		if key, ok := idKeys[resource]; ok {
			attrs = append(attrs, slog.String(key, id))
		}
	}
	return attrs
}
