package artifacts

import (
	"bytes"
	"encoding/json"
	"testing"
)

// refLogBody is how the log writer read messages before logbody.go: a map of raw
// values with encoding/json, then the ids from the body into frameIDs. logBody and
// bodyFrameIDs must give the same.
func refLogBody(raw []byte, field string) (json.RawMessage, frameIDs) {
	var ids frameIDs
	var msg map[string]json.RawMessage
	if json.Unmarshal(raw, &msg) != nil {
		return json.RawMessage(`{}`), ids
	}
	body := msg[field]
	if e, ok := msg["error"]; ok && field == "result" {
		body = append(append([]byte(`{"error":`), e...), '}')
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		body = []byte(`{}`)
	}
	_ = json.Unmarshal(body, &ids)
	return body, ids
}

var logBodySeeds = []string{
	`{"id":1,"method":"Runtime.evaluate","params":{"expression":"1+1"},"sessionId":"S"}`,
	`{"id":1,"result":{"result":{"type":"number","value":2,"description":"2"}},"sessionId":"S"}`,
	`{"id":2,"result":{"frameId":"F","loaderId":"L"}}`,
	`{"id":3,"error":{"code":-32000,"message":"x"},"result":{"frameId":"F"}}`,
	` { "params" : { "frameId" : "F\u0041" , "FRAMEID":"G", "loaderid": 7 } , "params":{"frameId":null} } `,
	`{"par\u0061ms":{"fr\u0061meId":"é\ud83d\ude00"},"result":[1,2]}`,
	`{"result":"x","params":[{"a":"}"}]}`,
	`null`, `[]`, `"params"`, `{}`, `{"params":{}}`, `{"id":1,`, "{\"params\":{\"frameId\":\"\xff\"}}",
	`{"result":{"frameId":{"frameId":"inner"},"loaderId":["x"]}}`,
	`{"result":{"frame\u212aId":"kelvin","loaderİd":"dot"}}`,
}

func TestLogBody(t *testing.T) {
	for _, s := range logBodySeeds {
		for _, field := range []string{"params", "result"} {
			checkLogBody(t, []byte(s), field)
		}
	}
	got, ids := logBody([]byte(logBodySeeds[2]), "result"), bodyFrameIDs([]byte(`{"frameId":"F","loaderId":"L"}`))
	if string(got) != `{"frameId":"F","loaderId":"L"}` || ids != (frameIDs{"F", "L"}) {
		t.Errorf("logBody = %s, %+v", got, ids) // the reference itself is checked here
	}
}

func checkLogBody(t *testing.T, raw []byte, field string) {
	t.Helper()
	wantBody, wantIDs := refLogBody(raw, field)
	body := logBody(raw, field)
	ids := bodyFrameIDs(body)
	if !bytes.Equal(body, wantBody) || ids != wantIDs {
		t.Errorf("logBody(%q, %s) = %s, %+v; want %s, %+v", raw, field, body, ids, wantBody, wantIDs)
	}
}

// FuzzLogBody checks logBody and bodyFrameIDs against encoding/json.
func FuzzLogBody(f *testing.F) {
	for _, s := range logBodySeeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, result bool) {
		field := "params"
		if result {
			field = "result"
		}
		checkLogBody(t, raw, field)
	})
}
