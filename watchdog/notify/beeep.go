package notify

import (
	"fmt"
	"strings"
	"sync"

	"github.com/gen2brain/beeep"
)

// AppName is the application name notifications are sent under.
const AppName = "keycap"

// beeepMu serialises calls into beeep, whose application name is a
// package variable.
var beeepMu sync.Mutex

// Beeep delivers notifications through github.com/gen2brain/beeep: on
// Linux to org.freedesktop.Notifications on the session bus (falling back
// to notify-send), elsewhere through the system's own notification centre.
// Critical notifications go through beeep.Alert, which also beeps. The
// zero value is ready to use.
type Beeep struct {
	// AppName defaults to "keycap".
	AppName string
	// Icon is the path of an icon file; IconPNG, if set, an icon's PNG bytes
	// and used instead.
	Icon    string
	IconPNG []byte
}

// Notify shows n. Delivery can take a while when the notification service
// is slow; wrap Beeep in a Queue on a request path.
func (b *Beeep) Notify(n Notification) error {
	title := n.Title
	if title == "" {
		title = "keycap"
	}
	// Notification servers may read the body as markup, where a message's
	// "<dollars>" would be taken for a tag.
	body := markup.Replace(n.Message)
	var icon any = b.Icon
	if len(b.IconPNG) > 0 {
		icon = b.IconPNG
	}
	app := b.AppName
	if app == "" {
		app = AppName
	}

	beeepMu.Lock()
	defer beeepMu.Unlock()
	beeep.AppName = app
	var err error
	if n.Critical {
		err = beeep.Alert(title, body, icon)
	} else {
		err = beeep.Notify(title, body, icon)
	}
	if err != nil {
		return fmt.Errorf("desktop notification: %w", err)
	}
	return nil
}

var markup = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
