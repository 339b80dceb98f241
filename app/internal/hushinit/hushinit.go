// Package hushinit keeps the standard logger quiet while Fyne's packages
// initialise, until Restore. Fyne's translations package logs an error at
// init when the locale is C.UTF-8 (the default of Debian containers and many
// CI machines), and package app is linked into every keycap command, so
// without this every `keycap status` would start with three lines of noise.
//
// It works because Go initialises packages in import-path order among those
// whose imports are ready: this package needs only io and log, which are
// ready long before fyne.io/fyne/v2/lang's own imports, so it runs first.
// Package app calls Restore from its init, which runs after Fyne's.
package hushinit

import (
	"io"
	"log"
)

var saved io.Writer

func init() {
	saved = log.Writer()
	log.SetOutput(io.Discard)
}

// Restore gives the standard logger back its output; later calls do
// nothing.
func Restore() {
	if saved != nil {
		log.SetOutput(saved)
		saved = nil
	}
}
