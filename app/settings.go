package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keycap/keycap/app/keycheck"
	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/keystore"
)

// settingsWindow is the settings window: the API key (saved to the
// keychain and checked against the upstream), the budget, the proxy's
// settings and start at login. A change applies to the running engine at
// once; input the engine would refuse is refused in the form, with a
// sentence.
type settingsWindow struct {
	u      *ui
	window fyne.Window

	key       *widget.Entry
	keyStored *widget.Label
	keyResult *widget.Label
	saveKey   *widget.Button
	checkKey  *widget.Button

	cap, warnAt, timezone, upstream, ttl *widget.Entry
	tzSelect, ttlSelect                  *widget.SelectEntry
	login                                *widget.Check
	loginNote                            *widget.Label
	loginBusy                            bool

	problem *widget.Label
	result  *widget.Label
	save    *widget.Button
}

// Timezones offered in the timezone field; any IANA name may be typed.
var timezones = []string{"", "UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney"}

func newSettings(u *ui) *settingsWindow {
	s := &settingsWindow{u: u}
	w := u.app.NewWindow("keycap — settings")
	w.SetIcon(AppIcon)
	w.SetCloseIntercept(w.Hide)
	s.window = w
	w.SetContent(s.content())
	w.Resize(fyne.NewSize(700, 680))
	s.load()
	return s
}

// field makes an entry whose validator shows the form's sentence.
func (s *settingsWindow) field(check func(string) error) *widget.Entry {
	e := widget.NewEntry()
	s.validated(e, check)
	return e
}

func (s *settingsWindow) validated(e *widget.Entry, check func(string) error) {
	e.Validator = func(text string) error {
		if err := check(text); err != nil {
			return errors.New(viewmodel.Sentence(err))
		}
		return nil
	}
	e.OnChanged = func(string) { s.recheck() }
}

func (s *settingsWindow) content() fyne.CanvasObject {
	s.key = widget.NewPasswordEntry()
	s.key.SetPlaceHolder("Paste your OpenAI API key (sk-…)")
	s.key.OnSubmitted = func(string) { s.storeKey() }
	s.keyStored = widget.NewLabel("")
	s.keyStored.Wrapping = fyne.TextWrapWord
	s.keyResult = widget.NewLabel("")
	s.keyResult.Wrapping = fyne.TextWrapWord
	s.saveKey = widget.NewButtonWithIcon("Save key", theme.DocumentSaveIcon(), s.storeKey)
	s.saveKey.Importance = widget.HighImportance
	s.checkKey = widget.NewButtonWithIcon("Check key", theme.ConfirmIcon(), s.checkStoredKey)
	keyBox := container.NewVBox(
		container.NewBorder(nil, nil, nil, container.NewHBox(s.saveKey, s.checkKey), s.key),
		s.keyStored, s.keyResult,
	)

	s.cap = s.field(func(t string) error { _, err := viewmodel.ParseCap(t); return err })
	s.warnAt = s.field(func(t string) error { _, err := viewmodel.ParseWarnAt(t); return err })
	s.tzSelect = widget.NewSelectEntry(timezones)
	s.tzSelect.SetPlaceHolder("empty: this computer's time zone")
	s.validated(&s.tzSelect.Entry, viewmodel.CheckTimezone)
	s.timezone = &s.tzSelect.Entry
	s.upstream = s.field(viewmodel.CheckUpstream)
	s.ttlSelect = widget.NewSelectEntry([]string{"15m", "1h", "8h", "24h"})
	s.validated(&s.ttlSelect.Entry, func(t string) error { _, err := viewmodel.ParseTTL(t); return err })
	s.ttl = &s.ttlSelect.Entry

	s.login = widget.NewCheck("Start keycap when I log in", s.setLogin)
	s.loginNote = widget.NewLabel("")
	s.loginNote.Wrapping = fyne.TextWrapWord
	s.loginNote.Importance = widget.LowImportance

	form := widget.NewForm(
		widget.NewFormItem("OpenAI API key", keyBox),
		&widget.FormItem{Text: "Daily cap (USD)", Widget: s.cap, HintText: "Requests are refused once today's spend would pass this."},
		&widget.FormItem{Text: "Warn at (% of cap)", Widget: s.warnAt, HintText: "The tray icon turns amber past the first of these."},
		&widget.FormItem{Text: "Time zone", Widget: s.tzSelect, HintText: "Where your day, and so the cap, ends."},
		&widget.FormItem{Text: "Upstream URL", Widget: s.upstream, HintText: "Where the proxy forwards requests."},
		&widget.FormItem{Text: "Token lifetime", Widget: s.ttlSelect, HintText: "How long a new terminal token lives, at most 24h."},
		widget.NewFormItem("Start at login", container.NewVBox(s.login, s.loginNote)),
	)
	s.problem = widget.NewLabel("")
	s.problem.Importance = widget.DangerImportance
	s.problem.Wrapping = fyne.TextWrapWord
	s.result = widget.NewLabel("")
	s.result.Importance = widget.SuccessImportance
	s.result.Wrapping = fyne.TextWrapWord
	s.save = widget.NewButtonWithIcon("Save settings", theme.DocumentSaveIcon(), s.apply)
	s.save.Importance = widget.HighImportance
	revert := widget.NewButton("Revert", func() { s.load(); s.result.SetText("") })
	buttons := container.NewHBox(layout.NewSpacer(), revert, s.save)
	return container.NewBorder(nil, container.NewVBox(s.problem, s.result, buttons), nil, nil, container.NewVScroll(form))
}

// open shows the window, with the key field focused on a first run.
func (s *settingsWindow) open(focusKey bool) {
	s.load()
	s.window.Show()
	s.window.RequestFocus()
	if focusKey {
		s.window.Canvas().Focus(s.key)
	}
}

// load fills the form from the engine's settings.
func (s *settingsWindow) load() {
	f := viewmodel.SettingsOf(s.u.o.Engine.Config())
	s.cap.SetText(f.Cap)
	s.warnAt.SetText(f.WarnAt)
	s.timezone.SetText(f.Timezone)
	s.upstream.SetText(f.Upstream)
	s.ttl.SetText(f.TokenTTL)
	s.loadLogin()
	s.recheck()
	s.showKey(s.u.view.Status.KeyPresent, s.u.view.Status.Key)
}

func (s *settingsWindow) loadLogin() {
	e := s.u.o.Autostart
	s.loginBusy = true
	defer func() { s.loginBusy = false }()
	if e == nil {
		s.login.SetChecked(false)
		s.login.Disable()
		s.loginNote.SetText("Start at login is not available here.")
		return
	}
	on, err := e.Enabled()
	s.login.SetChecked(on)
	if err != nil {
		s.loginNote.SetText(viewmodel.Sentence(err))
		return
	}
	s.loginNote.SetText("keycap starts from " + e.Where() + ".")
}

func (s *settingsWindow) setLogin(on bool) {
	if s.loginBusy {
		return
	}
	e := s.u.o.Autostart
	if e == nil {
		return
	}
	var err error
	if on {
		err = e.Enable()
	} else {
		err = e.Disable()
	}
	if err != nil {
		s.loadLogin()
		s.loginNote.SetText(viewmodel.Sentence(err))
		s.loginNote.Importance = widget.DangerImportance
		s.loginNote.Refresh()
		return
	}
	s.loginNote.Importance = widget.LowImportance
	s.loadLogin()
	if on {
		s.loginNote.SetText("keycap will start at login, from " + e.Where() + ".")
	} else {
		s.loginNote.SetText("keycap will not start at login.")
	}
}

// form returns the form's text.
func (s *settingsWindow) form() viewmodel.Settings {
	return viewmodel.Settings{Cap: s.cap.Text, WarnAt: s.warnAt.Text, Timezone: s.timezone.Text, Upstream: s.upstream.Text, TokenTTL: s.ttl.Text}
}

// recheck says at once what is wrong with the form, and keeps Save off
// until it is right.
func (s *settingsWindow) recheck() {
	if s.problem == nil {
		return // still building the window
	}
	_, err := s.form().Apply(s.u.o.Engine.Config())
	s.problem.SetText(viewmodel.Sentence(err))
	if err != nil {
		s.save.Disable()
		s.result.SetText("")
	} else {
		s.save.Enable()
	}
	s.relayout()
}

// apply saves the form and applies it to the running engine.
func (s *settingsWindow) apply() {
	cfg, err := s.form().Apply(s.u.o.Engine.Config())
	if err == nil {
		err = s.u.o.Engine.UpdateConfig(cfg)
	}
	if err != nil {
		s.problem.SetText(viewmodel.Sentence(err))
		s.result.SetText("")
		return
	}
	s.problem.SetText("")
	s.load()
	s.result.SetText(fmt.Sprintf("Saved. The cap is now %s a day, and the new settings apply at once.", cfg.Cap()))
	s.u.show(s.u.build())
}

// show follows the engine: the key's status line.
func (s *settingsWindow) show(v viewmodel.View) {
	s.showKey(v.Status.KeyPresent, v.Status.Key)
}

func (s *settingsWindow) showKey(present bool, redacted string) {
	if present {
		s.keyStored.SetText("In use: " + redacted + ", from the system keychain. Paste a new key above to replace it.")
		s.checkKey.Enable()
	} else {
		s.keyStored.SetText("No key yet. keycap keeps it in the system keychain and never shows it again; scripts get short-lived tokens instead.")
		s.checkKey.Disable()
	}
}

// storeKey saves the typed key to the keychain, makes the engine use it,
// and checks it against the upstream. The keychain may have to ask the
// user to unlock it, so this runs off the UI's goroutine.
func (s *settingsWindow) storeKey() {
	typed := s.key.Text
	if typed == "" {
		s.keyResult.SetText("Paste a key first.")
		return
	}
	s.saveKey.Disable()
	s.keyResult.SetText("Saving to the system keychain…")
	keys, eng, upstream, client := s.u.o.Keys, s.u.o.Engine, s.u.o.Engine.Config().Upstream, s.u.o.HTTPClient
	s.u.async(func() {
		err := keys.SetAPIKey(typed)
		var k keystore.Key
		if err == nil {
			k, err = keys.APIKey()
		}
		if err != nil {
			fyne.Do(func() {
				s.saveKey.Enable()
				s.keyResult.Importance = widget.DangerImportance
				s.keyResult.SetText(viewmodel.Sentence(err))
				s.relayout()
			})
			return
		}
		eng.ReloadKey()
		fyne.Do(func() {
			s.key.SetText("")
			s.keyResult.Importance = widget.MediumImportance
			s.keyResult.SetText(fmt.Sprintf("Saved %s in the system keychain. Checking it…", k.Redacted()))
			s.relayout()
		})
		r := keycheck.Check(context.Background(), upstream, k.Value, client)
		fyne.Do(func() {
			s.saveKey.Enable()
			s.showCheck(r)
		})
	})
}

// checkStoredKey checks the key in the keychain against the upstream.
func (s *settingsWindow) checkStoredKey() {
	s.checkKey.Disable()
	s.keyResult.Importance = widget.MediumImportance
	s.keyResult.SetText("Checking the stored key…")
	keys, upstream, client := s.u.o.Keys, s.u.o.Engine.Config().Upstream, s.u.o.HTTPClient
	s.u.async(func() {
		k, err := keys.APIKey()
		var r keycheck.Result
		if err != nil {
			r.Message = viewmodel.Sentence(err)
		} else {
			r = keycheck.Check(context.Background(), upstream, k.Value, client)
		}
		fyne.Do(func() {
			s.checkKey.Enable()
			s.showCheck(r)
		})
	})
}

func (s *settingsWindow) showCheck(r keycheck.Result) {
	s.keyResult.Importance = widget.DangerImportance
	if r.OK {
		s.keyResult.Importance = widget.SuccessImportance
	}
	s.keyResult.SetText(r.Message + " (checked " + s.u.now().Format(time.TimeOnly) + ")")
	s.relayout()
}

// relayout lays the window out again after a text changed its height.
func (s *settingsWindow) relayout() {
	if c := s.window.Content(); c != nil {
		c.Refresh()
	}
}
