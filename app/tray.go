package app

import (
	"slices"

	"fyne.io/fyne/v2"

	"github.com/keycap/keycap/app/viewmodel"
)

// trayMenu is the tray icon's menu. Its figures are rebuilt from each view;
// the menu is refreshed only when a label changed, because a refresh
// rebuilds the whole menu on the desktop's side.
type trayMenu struct {
	u      *ui
	menu   *fyne.Menu
	labels []string
}

func newTrayMenu(u *ui) *trayMenu {
	t := &trayMenu{u: u, menu: fyne.NewMenu(Name)}
	return t
}

// show puts a view's figures in the menu.
func (t *trayMenu) show(v viewmodel.Tray) {
	u := t.u
	var items []*fyne.MenuItem
	add := func(label string, action func()) {
		items = append(items, fyne.NewMenuItem(menuText(label), action))
	}
	switch v.State {
	case viewmodel.NoKey:
		add(v.Alert, u.openSettings)
	case viewmodel.Paused:
		add(v.Alert, u.openDashboard)
	case viewmodel.CapReached:
		add(v.Alert, u.openDashboard)
	}
	// The figures are live text; clicking one opens the dashboard, which
	// says more.
	add(v.Spend, u.openDashboard)
	add(v.Reserved, u.openDashboard)
	for _, s := range v.Top {
		add(s, u.openDashboard)
	}
	items = append(items, fyne.NewMenuItemSeparator())
	add(v.PauseLabel, u.togglePause)
	add(viewmodel.NewToken, u.newTerminalToken)
	add(viewmodel.OpenDashboard, u.openDashboard)
	add(viewmodel.OpenSettings, u.openSettings)
	items = append(items, fyne.NewMenuItemSeparator())
	quit := fyne.NewMenuItem(viewmodel.Quit, u.quit)
	quit.IsQuit = true
	items = append(items, quit)

	labels := make([]string, len(items))
	for i, it := range items {
		labels[i] = it.Label
	}
	t.menu.Items = items
	if slices.Equal(labels, t.labels) {
		return
	}
	t.labels = labels
	if u.desk != nil {
		t.menu.Refresh()
	}
}

// item returns the menu item labelled label, or nil.
func (t *trayMenu) item(label string) *fyne.MenuItem {
	for _, it := range t.menu.Items {
		if it.Label == menuText(label) {
			return it
		}
	}
	return nil
}
