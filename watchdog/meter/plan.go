package meter

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/problem"
)

func asErr[T any](err error, target *T) bool { return errors.As(err, target) }

type chatRequest struct {
	Model          string          `json:"model"`
	Messages       json.RawMessage `json:"messages"`
	Prompt         json.RawMessage `json:"prompt"`
	Tools          json.RawMessage `json:"tools"`
	Functions      json.RawMessage `json:"functions"`
	ResponseFormat json.RawMessage `json:"response_format"`
	Stream         *bool           `json:"stream"`
	StreamOptions  *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	N                   *int64   `json:"n"`
	BestOf              *int64   `json:"best_of"`
	MaxTokens           *int64   `json:"max_tokens"`
	MaxCompletionTokens *int64   `json:"max_completion_tokens"`
	ServiceTier         string   `json:"service_tier"`
	Modalities          []string `json:"modalities"`
}

func (m *Meter) planChat(p *Plan, body []byte) error {
	var req chatRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := m.price(p, req.Model); err != nil {
		return err
	}
	if p.Endpoint == Chat && len(bytes.TrimSpace(req.Messages)) == 0 {
		return &problem.Error{Code: problem.Invalid, Param: "messages", Message: "keycap: the request has no \"messages\""}
	}
	p.setTier(req.ServiceTier)
	var c counter
	c.model = req.Model
	c.raw(req.Messages)
	c.raw(req.Prompt)
	c.raw(req.Tools)
	c.raw(req.Functions)
	c.raw(req.ResponseFormat)
	n := int64(1)
	if req.N != nil && *req.N > 1 {
		n = *req.N
	}
	if req.BestOf != nil && *req.BestOf > n {
		n = *req.BestOf
	}
	out := maxOut(p.price, req.MaxCompletionTokens, req.MaxTokens)
	if p.Endpoint == Completions && req.MaxCompletionTokens == nil && req.MaxTokens == nil {
		out = 16 // the legacy completions default
	}
	audioOut := contains(req.Modalities, "audio")
	p.tokenEstimate(pad(c.tokens)+3, c, out*n, audioOut)
	p.Fingerprint = fingerprint(p.Endpoint, req.Model, req.Messages, req.Prompt)
	if req.Stream != nil && *req.Stream {
		p.Stream = true
		if req.StreamOptions == nil || req.StreamOptions.IncludeUsage == nil || !*req.StreamOptions.IncludeUsage {
			nb, err := setField(body, "stream_options", map[string]any{"include_usage": true})
			if err != nil {
				return err
			}
			p.Body, p.StripUsage = nb, true
		}
	}
	return nil
}

type responsesRequest struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"`
	Instructions       json.RawMessage `json:"instructions"`
	Tools              json.RawMessage `json:"tools"`
	Text               json.RawMessage `json:"text"`
	Stream             *bool           `json:"stream"`
	Background         *bool           `json:"background"`
	MaxOutputTokens    *int64          `json:"max_output_tokens"`
	ServiceTier        string          `json:"service_tier"`
	PreviousResponseID string          `json:"previous_response_id"`
	Conversation       json.RawMessage `json:"conversation"`
	Prompt             json.RawMessage `json:"prompt"`
}

func (m *Meter) planResponses(p *Plan, body []byte) error {
	var req responsesRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := m.price(p, req.Model); err != nil {
		return err
	}
	p.setTier(req.ServiceTier)
	var c counter
	c.model = req.Model
	c.raw(req.Input)
	c.raw(req.Instructions)
	c.raw(req.Tools)
	c.raw(req.Text)
	in := pad(c.tokens)
	if req.PreviousResponseID != "" || isSet(req.Conversation) || isSet(req.Prompt) {
		// Stored context is invisible here: reserve the whole window.
		window := p.price.MaxInputTokens
		if window == 0 {
			window = 128_000
		}
		in += window
		p.Note = "continues stored context, so the model's whole context window is reserved"
	}
	p.tokenEstimate(in, c, maxOut(p.price, req.MaxOutputTokens), false)
	p.Fingerprint = fingerprint(p.Endpoint, req.Model, req.Input, req.Instructions)
	p.Stream = req.Stream != nil && *req.Stream
	if req.Background != nil && *req.Background {
		p.Note = "background response: usage arrives later, so it is charged at the estimate"
	}
	return nil
}

func (m *Meter) planEmbeddings(p *Plan, body []byte) error {
	var req struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := m.price(p, req.Model); err != nil {
		return err
	}
	if !isSet(req.Input) {
		return &problem.Error{Code: problem.Invalid, Param: "input", Message: "keycap: the request has no \"input\""}
	}
	var c counter
	c.model = req.Model
	c.raw(req.Input)
	p.tokenEstimate(pad(c.tokens), c, 0, false)
	p.Fingerprint = fingerprint(p.Endpoint, req.Model, req.Input)
	return nil
}

func (m *Meter) planSpeech(p *Plan, body []byte) error {
	var req struct {
		Model        string   `json:"model"`
		Input        *string  `json:"input"`
		Instructions string   `json:"instructions"`
		Speed        *float64 `json:"speed"`
		StreamFormat string   `json:"stream_format"`
	}
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := m.price(p, req.Model); err != nil {
		return err
	}
	if req.Input == nil {
		return &problem.Error{Code: problem.Invalid, Param: "input", Message: "keycap: the request has no \"input\" text to speak"}
	}
	chars := int64(utf8.RuneCountInString(*req.Input))
	p.Fingerprint = fingerprint(p.Endpoint, req.Model, []byte(*req.Input))
	p.Stream = req.StreamFormat == "sse"
	if p.price.PerCharacter() {
		p.Units = Units{Characters: chars}
		p.Estimate = p.price.CharacterCost(chars)
		p.Exact = true
		return nil
	}
	// Token-priced speech: text in, audio tokens out. Speech runs about 15
	// characters a second; 8 (and slower still at low speed) keeps it high.
	seconds := float64(chars)/8 + 1
	if req.Speed != nil && *req.Speed > 0 && *req.Speed < 1 {
		seconds /= *req.Speed
	}
	in := pad(CountTokens(req.Model, *req.Input) + CountTokens(req.Model, req.Instructions))
	outTokens := int64(seconds * 25)
	p.Units = Units{Tokens: pricing.Tokens{Input: in, Output: outTokens, OutputAudio: outTokens}, Characters: chars}
	est := p.price.TokenCost(p.Units.Tokens, p.tier)
	if bySec := money.FromFloat(seconds * p.price.OutputPerSecond); bySec > est {
		est = bySec + p.price.TokenCost(pricing.Tokens{Input: in}, p.tier)
	}
	p.Estimate = est
	return nil
}

// form is a parsed multipart request: its fields and its files' sizes.
type form struct {
	fields map[string]string
	files  map[string][][]byte
}

func parseForm(contentType string, body []byte) (*form, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, problem.Errorf(problem.Invalid, "keycap: this endpoint takes multipart/form-data with a file")
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	f := &form{fields: map[string]string{}, files: map[string][][]byte{}}
	for {
		part, err := r.NextPart()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, problem.Errorf(problem.Invalid, "keycap: the multipart body cannot be read (%v)", err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(part); err != nil {
			return nil, problem.Errorf(problem.Invalid, "keycap: the multipart body cannot be read (%v)", err)
		}
		name := part.FormName()
		if part.FileName() != "" {
			f.files[name] = append(f.files[name], buf.Bytes())
		} else if len(f.fields[name]) == 0 {
			f.fields[name] = buf.String()
		}
	}
	return f, nil
}

func (m *Meter) planAudioUpload(p *Plan, contentType string, body []byte) error {
	f, err := parseForm(contentType, body)
	if err != nil {
		return err
	}
	if err := m.price(p, f.fields["model"]); err != nil {
		return err
	}
	files := f.files["file"]
	if len(files) == 0 {
		return &problem.Error{Code: problem.Invalid, Param: "file", Message: "keycap: the request has no audio \"file\""}
	}
	audio := files[0]
	seconds, ok := wavSeconds(audio)
	if !ok {
		// Unknown container: assume a low 16 kbit/s bitrate, which
		// over-states the length of any real speech recording.
		seconds = float64(len(audio)) / 2000
		p.Note = "audio length estimated from the file size"
	}
	seconds = math.Ceil(seconds)
	p.Stream = f.fields["stream"] == "true"
	p.Fingerprint = fingerprint(p.Endpoint, p.Model, audio)
	if p.price.PerSecond() {
		p.Units = Units{Seconds: seconds}
		p.Estimate = p.price.SecondCost(seconds)
		// A WAV header gives the length exactly, and per-second pricing
		// needs nothing else; translations report no usage at all.
		p.Exact = ok
		return nil
	}
	// Token-priced transcription: generous audio tokens per second.
	audioTokens := int64(seconds * 50)
	in := audioTokens + pad(CountTokens(p.Model, f.fields["prompt"]))
	out := maxOut(p.price)
	p.Units = Units{Tokens: pricing.Tokens{Input: in, InputAudio: audioTokens, Output: out}, Seconds: seconds}
	p.Estimate = p.price.TokenCost(p.Units.Tokens, p.tier)
	return nil
}

func (m *Meter) planImageJSON(p *Plan, body []byte) error {
	var req struct {
		Model   string `json:"model"`
		Prompt  string `json:"prompt"`
		N       *int64 `json:"n"`
		Size    string `json:"size"`
		Quality string `json:"quality"`
		Stream  *bool  `json:"stream"`
	}
	if err := decode(body, &req); err != nil {
		return err
	}
	if req.Model == "" {
		req.Model = "dall-e-2" // the API's default
	}
	n := int64(1)
	if req.N != nil {
		n = *req.N
	}
	p.Stream = req.Stream != nil && *req.Stream
	p.Fingerprint = fingerprint(p.Endpoint, req.Model, []byte(req.Prompt), []byte(req.Size), []byte(req.Quality))
	return m.imageEstimate(p, req.Model, req.Size, req.Quality, req.Prompt, n, 0)
}

func (m *Meter) planImageUpload(p *Plan, contentType string, body []byte) error {
	f, err := parseForm(contentType, body)
	if err != nil {
		return err
	}
	model := f.fields["model"]
	if model == "" {
		model = "dall-e-2"
	}
	n := int64(1)
	if s := f.fields["n"]; s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return &problem.Error{Code: problem.Invalid, Param: "n", Message: "keycap: \"n\" must be a whole number"}
		}
		n = v
	}
	images := int64(len(f.files["image"]) + len(f.files["image[]"]))
	if images == 0 {
		return &problem.Error{Code: problem.Invalid, Param: "image", Message: "keycap: the request has no \"image\" file"}
	}
	p.Stream = f.fields["stream"] == "true"
	h := sha256.New()
	for _, img := range append(f.files["image"], f.files["image[]"]...) {
		h.Write(img)
	}
	p.Fingerprint = fingerprint(p.Endpoint, model, []byte(f.fields["prompt"]), h.Sum(nil))
	return m.imageEstimate(p, model, f.fields["size"], f.fields["quality"], f.fields["prompt"], n, images)
}

func (m *Meter) imageEstimate(p *Plan, model, size, quality, prompt string, n, inputImages int64) error {
	if n < 1 || n > 10 {
		return &problem.Error{Code: problem.Invalid, Param: "n", Message: "keycap: \"n\" must be between 1 and 10"}
	}
	perCard, card, ok := m.Prices.ImageCost(model, size, quality, n)
	pr, base, known := m.Prices.Lookup(model)
	if strings.HasPrefix(base, "dall-e") || (!pr.PerToken() && ok) {
		if !ok {
			return m.price(p, "unknown-image-size:"+model)
		}
		p.Model, p.Card, p.price = model, card, pr
		p.Units = Units{Images: n}
		p.Estimate, p.Exact = perCard, true
		return nil
	}
	if !known {
		return m.price(p, model)
	}
	p.Model, p.Card, p.price = model, base, pr
	// GPT image models bill tokens; the per-image card (or a high-quality
	// large image's token count) bounds the output.
	in := pad(CountTokens(model, prompt))
	imgIn := inputImages * 6_000
	outTokens := 8_000 * n
	p.Units = Units{Tokens: pricing.Tokens{Input: in + imgIn, InputImage: imgIn, Output: outTokens, OutputImage: outTokens}, Images: n}
	est := pr.TokenCost(p.Units.Tokens, p.tier)
	if ok {
		if alt := perCard + pr.TokenCost(pricing.Tokens{Input: in + imgIn, InputImage: imgIn}, p.tier); alt > est {
			est = alt
		}
	}
	p.Estimate = est
	return nil
}

// tokenEstimate sets a token-priced estimate: in input tokens, out output
// tokens, priced at the dearest rate output could be billed at.
func (p *Plan) tokenEstimate(in int64, c counter, out int64, audioOut bool) {
	in = capInput(p.price, in)
	u := pricing.Tokens{Input: in, InputImage: min(c.images, in), InputAudio: min(c.audio, in), Output: out}
	if audioOut {
		u.OutputAudio = out
	}
	est := p.price.TokenCost(u, p.tier)
	r := u
	r.Reasoning, r.OutputAudio = out, 0
	if alt := p.price.TokenCost(r, p.tier); alt > est {
		est = alt
	}
	p.Units = Units{Tokens: u}
	p.Estimate = est
}

// counter adds up the tokens of the text in a JSON request: every string
// counts, images and audio count at a generous fixed rate, and every object
// adds a few tokens of framing.
type counter struct {
	model  string
	tokens int64
	images int64
	audio  int64
}

func (c *counter) raw(r json.RawMessage) {
	if !isSet(r) {
		return
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		c.tokens += int64(len(r))
		return
	}
	c.walk(v)
}

// Image inputs: a high-detail image is at most about 1,100 tokens on GPT-4o;
// the mini models multiply image tokens, so they get more.
func (c *counter) imageTokens() int64 {
	if strings.Contains(c.model, "mini") {
		return 26_000
	}
	return 1_600
}

func (c *counter) walk(v any) {
	switch x := v.(type) {
	case string:
		c.tokens += CountTokens(c.model, x)
	case json.Number:
		c.tokens++
	case []any:
		for _, e := range x {
			c.walk(e)
		}
	case map[string]any:
		c.tokens += 3
		typ, _ := x["type"].(string)
		switch {
		case typ == "image_url" || typ == "input_image" || x["image_url"] != nil:
			t := c.imageTokens()
			c.tokens += t
			c.images += t
			return
		case typ == "input_audio" || x["input_audio"] != nil:
			data := ""
			if a, ok := x["input_audio"].(map[string]any); ok {
				data, _ = a["data"].(string)
			}
			// About 10 audio tokens a second; 1 kB a second is a low bitrate.
			t := int64(base64.StdEncoding.DecodedLen(len(data)))/100 + 100
			c.tokens += t
			c.audio += t
			return
		}
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "file_data" || strings.HasPrefix(s, "data:")) {
				c.tokens += int64(base64.StdEncoding.DecodedLen(len(s)))
				continue
			}
			c.walk(e)
		}
	}
}

func isSet(r json.RawMessage) bool {
	t := bytes.TrimSpace(r)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// fingerprint hashes what makes a request the same request: the endpoint,
// the model and its content, with JSON compacted so spacing does not matter.
func fingerprint(ep Endpoint, model string, parts ...[]byte) string {
	h := sha256.New()
	h.Write([]byte(ep))
	h.Write([]byte{0})
	h.Write([]byte(model))
	for _, p := range parts {
		h.Write([]byte{0})
		var buf bytes.Buffer
		if json.Valid(p) && json.Compact(&buf, p) == nil {
			h.Write(buf.Bytes())
		} else {
			h.Write(p)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// setField returns the JSON object body with one top-level field set,
// every other field kept byte for byte.
func setField(body []byte, key string, value any) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, problem.Errorf(problem.Invalid, "keycap: the request body must be a JSON object")
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, problem.Wrap(err, "keycap: cannot prepare the request")
	}
	obj[key] = v
	return json.Marshal(obj)
}
