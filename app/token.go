package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/watchdog/money"
)

// tokenWindow says what "New terminal token…" copied, and makes tokens with
// another label, lifetime or budget.
type tokenWindow struct {
	u      *ui
	window fyne.Window

	label  *widget.Entry
	ttl    *widget.SelectEntry
	budget *widget.Entry
	result *widget.Label
	lines  *widget.Label
	box    *fyne.Container
}

func newTokenWindow(u *ui) *tokenWindow {
	t := &tokenWindow{u: u}
	w := u.app.NewWindow("keycap — new terminal token")
	w.SetIcon(AppIcon)
	w.SetCloseIntercept(w.Hide)
	t.window = w

	t.label = widget.NewEntry()
	t.label.SetText("terminal")
	t.ttl = widget.NewSelectEntry([]string{"15m", "1h", "8h", "24h"})
	t.budget = widget.NewEntry()
	t.budget.SetPlaceHolder("none: only the daily cap")
	t.result = widget.NewLabel("")
	t.result.Wrapping = fyne.TextWrapWord
	t.lines = widget.NewLabel("")
	t.lines.TextStyle.Monospace = true
	t.lines.Wrapping = fyne.TextWrapBreak
	again := widget.NewButtonWithIcon("Copy export lines for a new token", theme.ContentCopyIcon(), t.issueFromForm)
	again.Importance = widget.HighImportance
	form := widget.NewForm(
		&widget.FormItem{Text: "Script label", Widget: t.label, HintText: "Shown in the tray and the dashboard."},
		&widget.FormItem{Text: "Lifetime", Widget: t.ttl, HintText: "At most 24h."},
		&widget.FormItem{Text: "Budget (USD)", Widget: t.budget, HintText: "The most this token may spend."},
	)
	t.box = container.NewVBox(t.result, t.lines, widget.NewSeparator(), form, container.NewHBox(again))
	w.SetContent(t.box)
	w.Resize(fyne.NewSize(600, 420))
	return t
}

// newTerminalToken issues a token with the defaults, copies its export lines
// to the clipboard and shows what it did.
func (u *ui) newTerminalToken() {
	u.token.ttl.SetText(viewmodel.ShortDuration(u.o.Engine.Config().TokenTTL.Duration))
	u.token.issue("terminal", 0, 0)
	u.token.window.Show()
	u.token.window.RequestFocus()
}

func (t *tokenWindow) issueFromForm() {
	ttl, err := viewmodel.ParseTTL(t.ttl.Text)
	if err != nil {
		t.fail(err)
		return
	}
	var budget money.USD
	if b := strings.TrimSpace(t.budget.Text); b != "" {
		if budget, err = money.Parse(b); err != nil || budget <= 0 {
			t.fail(fmt.Errorf("the budget must be an amount in dollars, like 0.50, or empty for none"))
			return
		}
	}
	t.issue(t.label.Text, ttl, budget)
}

// issue makes a token and puts its export lines on the clipboard. The
// token is shown only in its redacted form.
func (t *tokenWindow) issue(label string, ttl time.Duration, budget money.USD) {
	eng := t.u.o.Engine
	secret, tok, err := eng.IssueToken(context.Background(), label, ttl, budget)
	if err != nil {
		t.fail(err)
		return
	}
	lines := fmt.Sprintf("export OPENAI_API_KEY=%s\nexport OPENAI_BASE_URL=%s\n", secret, eng.ProxyURL())
	t.u.app.Clipboard().SetContent(lines)
	limit := ""
	if tok.Budget > 0 {
		limit = ", at most " + tok.Budget.String()
	}
	t.result.Importance = widget.SuccessImportance
	t.result.SetText(fmt.Sprintf("Copied to the clipboard: export lines for token %s (%s%s, until %s). Paste them into a terminal: what runs there spends through keycap.",
		tok.ID, tok.Label, limit, tok.Expires.In(time.Local).Format("15:04")))
	t.lines.SetText(fmt.Sprintf("export OPENAI_API_KEY=%s\nexport OPENAI_BASE_URL=%s", redactToken(secret), eng.ProxyURL()))
	t.box.Refresh() // the texts' heights changed
}

func (t *tokenWindow) fail(err error) {
	t.result.Importance = widget.DangerImportance
	t.result.SetText(viewmodel.Sentence(err))
	t.lines.SetText("")
	t.box.Refresh()
}

// redactToken shows a token as kc-…abcd.
func redactToken(secret string) string {
	if len(secret) < 12 {
		return "kc-…"
	}
	return secret[:3] + "…" + secret[len(secret)-4:]
}
