package standin

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// filesPath serves the images that answers with response_format "url" point
// to. The file name carries the picture's seed, so nothing is stored.
const filesPath = "/v1/standin-files/"

// pictureSide is the width and height of every picture, whatever size was asked
// for: the stand-in keeps its answers small.
const pictureSide = 64

// imageInputTokens is what one uploaded image costs a GPT image edit: a
// 512×512 tile at low input fidelity.
const imageInputTokens = 194

// Each image model family's sizes, qualities (the first is the default) and
// longest prompt.
var (
	imageSizes = map[string][]string{"dall-e-2": {"1024x1024", "512x512", "256x256"},
		"dall-e-3": {"1024x1024", "1792x1024", "1024x1792"}, "gpt-image": {"1024x1024", "1536x1024", "1024x1536"}}
	imageQualities  = map[string][]string{"dall-e-2": {"standard"}, "dall-e-3": {"standard", "hd"}, "gpt-image": {"high", "medium", "low"}}
	imagePromptMax  = map[string]int{"dall-e-2": 1000, "dall-e-3": 4000, "gpt-image": 32000}
	gptImageQuality = []string{"low", "medium", "high"}
	// gptImageTokens are the output tokens of one image from a GPT image model,
	// by size, for low, medium and high quality (OpenAI's table for gpt-image-1).
	gptImageTokens = map[string][3]int{"1024x1024": {272, 1056, 4160}, "1024x1536": {408, 1584, 6240}, "1536x1024": {400, 1568, 6208}}
)

type imageRequest struct {
	Prompt         *string `json:"prompt"`
	Model          string  `json:"model"`
	N              *int    `json:"n"`
	Size           string  `json:"size"`
	Quality        string  `json:"quality"`
	ResponseFormat string  `json:"response_format"`
	OutputFormat   string  `json:"output_format"`
	uploads        int     // images uploaded to edits and variations
}

func (s *Server) generateImages(x *exchange) {
	var req imageRequest
	if x.decode(&req) {
		s.images(x, req)
	}
}

// uploadImages answers edits and variations, which arrive as multipart forms.
func (s *Server) uploadImages(x *exchange) {
	if err := x.r.ParseMultipartForm(maxBody); err != nil {
		x.bodyError(err)
		return
	}
	form, v := x.r.MultipartForm, x.r.FormValue
	req := imageRequest{Model: v("model"), Size: v("size"), Quality: v("quality"), ResponseFormat: v("response_format"),
		OutputFormat: v("output_format"), uploads: len(form.File["image"]) + len(form.File["image[]"])}
	if p, ok := form.Value["prompt"]; ok {
		req.Prompt = &p[0]
	}
	if n, ok := form.Value["n"]; ok {
		i, err := strconv.Atoi(n[0])
		if err != nil {
			x.invalid("n", "invalid_type", "Invalid type for 'n': expected an integer, but got a string instead.")
			return
		}
		req.N = &i
	}
	if req.uploads == 0 {
		x.note(req.Model, false)
		x.missing("image")
		return
	}
	s.images(x, req)
}

func (s *Server) images(x *exchange, req imageRequest) {
	model := cmp.Or(req.Model, "dall-e-2")
	x.note(model, false)
	family, gpt := model, strings.HasPrefix(model, "gpt-image") || strings.HasPrefix(model, "chatgpt-image")
	if gpt {
		family = "gpt-image"
	}
	n := valueOr(req.N, 1)
	size, quality, prompt := req.Size, req.Quality, ""
	if size == "" || size == "auto" && gpt {
		size = imageSizes[family][0]
	}
	if quality == "" || quality == "auto" {
		quality = imageQualities[family][0]
	}
	if req.Prompt != nil {
		prompt = *req.Prompt
	}
	format := cmp.Or(req.ResponseFormat, "url")
	endpoint := x.rec.Endpoint
	switch {
	case imageSizes[family] == nil:
		x.fail(http.StatusNotFound, "invalid_request_error", "model_not_found", "model", fmt.Sprintf("The model '%s' does not exist.", model))
	case endpoint == "images/variations" && model != "dall-e-2",
		endpoint == "images/edits" && model == "dall-e-3":
		x.invalid("model", "invalid_value", "Invalid value for 'model' = %s: this model does not support %s.", model, endpoint)
	case endpoint != "images/variations" && prompt == "":
		x.missing("prompt")
	case len(prompt) > imagePromptMax[family]:
		x.invalid("prompt", "string_above_max_length", "Invalid 'prompt': string too long. Expected a string with maximum length %d, but got a string with length %d instead.", imagePromptMax[family], len(prompt))
	case n < 1 || n > 10:
		x.invalid("n", "invalid_value", "Invalid 'n': expected a value between 1 and 10, but got %d instead.", n)
	case model == "dall-e-3" && n != 1:
		x.invalid("n", "invalid_value", "Invalid 'n': dall-e-3 only supports n=1.")
	case !slices.Contains(imageSizes[family], size):
		x.invalid("size", "invalid_value", "Invalid value: '%s'. Supported values are: '%s'.", size, strings.Join(imageSizes[family], "', '"))
	case !slices.Contains(imageQualities[family], quality):
		x.invalid("quality", "invalid_value", "Invalid value: '%s'. Supported values are: '%s'.", quality, strings.Join(imageQualities[family], "', '"))
	case gpt && req.ResponseFormat != "":
		x.invalid("response_format", "unknown_parameter", "Unknown parameter: 'response_format'.")
	case format != "url" && format != "b64_json":
		x.invalid("response_format", "invalid_value", "Invalid value: '%s'. Supported values are: 'url' and 'b64_json'.", format)
	default:
		h := fnv.New64a()
		fmt.Fprint(h, model, "\x00", prompt, "\x00", size, quality)
		jpg := gpt && req.OutputFormat == "jpeg"
		data := make([]obj, n)
		for i := range data {
			seed := h.Sum64() + uint64(i)
			if gpt || format == "b64_json" {
				data[i] = obj{"b64_json": base64.StdEncoding.EncodeToString(picture(seed, jpg))}
			} else {
				data[i] = obj{"url": fileURL(x.r, seed)}
			}
			if model == "dall-e-3" {
				data[i]["revised_prompt"] = prompt
			}
		}
		body := obj{"created": x.now(), "data": data}
		u := Units{Images: n, Size: size, Quality: quality}
		if gpt {
			text, img := countTokens(model, prompt), req.uploads*imageInputTokens
			out := n * gptImageTokens[size][slices.Index(gptImageQuality, quality)]
			u.InputTokens, u.ImageTokens, u.OutputTokens = text+img, img, out
			body["usage"] = obj{"input_tokens": text + img, "output_tokens": out, "total_tokens": text + img + out,
				"input_tokens_details":  obj{"text_tokens": text, "image_tokens": img},
				"output_tokens_details": obj{"image_tokens": out, "text_tokens": 0}}
			body["background"], body["size"], body["quality"], body["output_format"] = "opaque", size, quality, "png"
			if jpg {
				body["output_format"] = "jpeg"
			}
		}
		x.json(body, &u)
	}
}

func fileURL(r *http.Request, seed uint64) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s%simg-%016x.png", scheme, r.Host, filesPath, seed)
}

// file serves an image an answer pointed to. Like the real API's image URLs,
// it needs no API key.
func (s *Server) file(x *exchange) {
	name := strings.TrimPrefix(x.r.URL.Path, filesPath)
	var seed uint64
	if _, err := fmt.Sscanf(name, "img-%016x.png", &seed); err != nil || name != fmt.Sprintf("img-%016x.png", seed) {
		x.fail(http.StatusNotFound, "invalid_request_error", "", "", fmt.Sprintf("Invalid URL (%s %s)", x.r.Method, x.r.URL.Path))
		return
	}
	body := picture(seed, false)
	x.w.Header().Set("Content-Type", "image/png")
	x.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	x.header(http.StatusOK)
	x.w.Write(body)
}

// picture returns a small gradient whose colours come from seed, as PNG or,
// with jpg, JPEG.
func picture(seed uint64, jpg bool) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, pictureSide, pictureSide))
	r, g, b := byte(seed), byte(seed>>8), byte(seed>>16)
	for y := range pictureSide {
		for x := range pictureSide {
			img.SetNRGBA(x, y, color.NRGBA{r + byte(2*x), g + byte(2*y), b, 0xFF})
		}
	}
	var buf bytes.Buffer
	if jpg {
		jpeg.Encode(&buf, img, nil)
	} else {
		png.Encode(&buf, img)
	}
	return buf.Bytes()
}
