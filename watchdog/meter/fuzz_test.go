package meter

import (
	"bytes"
	"io"
	"testing"
)

func FuzzSSE(f *testing.F) {
	f.Add([]byte(chatStream), true)
	f.Add([]byte("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}\n\n"), false)
	f.Add([]byte("data: {\"usage\":\r\n\r\n"), true)
	m := MustMeter(f)
	f.Fuzz(func(t *testing.T, stream []byte, strip bool) {
		p, _ := m.Plan(Chat, "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
		p.Stream, p.StripUsage = true, strip
		b := p.WrapBody(io.NopCloser(bytes.NewReader(stream)), true, nil)
		out, err := io.ReadAll(b)
		if err != nil {
			t.Fatal(err)
		}
		if !strip && !bytes.Equal(out, stream) {
			t.Fatalf("stream changed though nothing was to be stripped")
		}
	})
}

func FuzzJSONBody(f *testing.F) {
	f.Add([]byte(`{"usage":{"prompt_tokens":1},"x":[1,{"usage":2}]}`))
	f.Add([]byte(`{"a":"\"usage\":","usage":null}`))
	m := MustMeter(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, _ := m.Plan(Embeddings, "", []byte(`{"model":"text-embedding-3-small","input":"x"}`))
		b := p.WrapBody(io.NopCloser(bytes.NewReader(body)), false, nil)
		out, _ := io.ReadAll(b)
		if !bytes.Equal(out, body) {
			t.Fatalf("non-stream body changed")
		}
	})
}

func FuzzPlan(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`,
		`{"model":"tts-1","input":"hello","voice":"alloy"}`,
		`{"model":"dall-e-3","prompt":"x","size":"1024x1792","quality":"hd"}`,
		`{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}],"previous_response_id":"r"}`,
		`{"model":"text-embedding-3-small","input":[[1,2,3]]}`,
	} {
		f.Add(uint8(0), []byte(s))
	}
	eps := []Endpoint{Chat, Completions, Responses, Embeddings, Speech, ImageGenerate, Moderations, Transcriptions, ImageEdit}
	m := MustMeter(f)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := eps[int(which)%len(eps)]
		p, err := m.Plan(ep, "multipart/form-data; boundary=x", body)
		if err == nil && p.Estimate < 0 {
			t.Fatalf("negative estimate %d", p.Estimate)
		}
	})
}
