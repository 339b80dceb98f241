package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

func TestWriteIsOpenAIShaped(t *testing.T) {
	for _, tt := range []struct {
		err        error
		status     int
		typ, code  string
		noRetry    bool
		hiddenText string
	}{
		{Errorf(DailyCapReached, "keycap: daily cap reached"), 429, "insufficient_quota", DailyCapReached, true, ""},
		{Errorf(LoopBlocked, "keycap: loop"), 429, "insufficient_quota", LoopBlocked, true, ""},
		{Errorf(InvalidToken, "keycap: bad token"), 401, "invalid_request_error", InvalidToken, true, ""},
		{Errorf(Upstream, "keycap: could not reach"), 502, "server_error", Upstream, false, ""},
		{Wrap(errors.New("disk /home/u full"), "keycap: cannot write"), 500, "server_error", Internal, false, "/home/u"},
		{fmt.Errorf("secret sk-xyz in a raw error"), 500, "server_error", Internal, false, "sk-xyz"},
	} {
		rec := httptest.NewRecorder()
		Write(rec, tt.err)
		var b Body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatalf("%v: body %q is not JSON", tt.err, rec.Body)
		}
		if got := rec.Code; got != tt.status {
			t.Errorf("%v: status = %d, want %d", tt.err, got, tt.status)
		}
		if b.Error.Type != tt.typ || b.Error.Code != tt.code || b.Error.Param != nil {
			t.Errorf("%v: error = %+v, want type %s code %s", tt.err, b.Error, tt.typ, tt.code)
		}
		if got := rec.Header().Get("X-Should-Retry") == "false"; got != tt.noRetry {
			t.Errorf("%v: x-should-retry false = %v, want %v", tt.err, got, tt.noRetry)
		}
		if tt.hiddenText != "" && strings.Contains(rec.Body.String(), tt.hiddenText) {
			t.Errorf("%v: internal detail %q reached the client: %s", tt.err, tt.hiddenText, rec.Body)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout talking to 10.0.0.1:443" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestNetReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "connection refused"},
		{timeoutErr{}, "timed out"},
		{errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer"), "connection reset"},
		{&net.DNSError{Err: "no such host", Name: "api.example"}, "unknown host"},
		{errors.New("EOF"), "connection failed"},
	} {
		if got := NetReason(tt.err); got != tt.want {
			t.Errorf("NetReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
