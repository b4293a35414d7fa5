package service_test

import (
	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/tui"
)

// Both ways of reaching a bridge serve the console.
var (
	_ tui.Controller = (*service.Local)(nil)
	_ tui.Controller = (*service.Client)(nil)
)
