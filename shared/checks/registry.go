package checks

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
)

// Definition describes a check ID once, for every plugin and report.
type Definition struct {
	ID          string
	Title       string
	Severity    Severity
	Remediation string
	// References: seed checklist items ("seed:..."), CIS controls, RFCs.
	References []string
	// BestEffort: an inconclusive observation makes the check a warning
	// instead of an error (Reduce). Say in the title's definition why the
	// check cannot always observe.
	BestEffort bool
}

var (
	mu       sync.RWMutex
	registry = map[string]Definition{}
	// IDs are lower-case dotted paths whose first element is the plugin or
	// kit that owns them: postgres.tls.min_version, tls.protocol.tls10.
	idPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)
)

// ValidID reports whether id has the stable-ID shape.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Register adds definitions; a third-party plugin registers its own IDs in
// init. Registering an ID twice with a different definition panics: IDs are
// stable contracts.
func Register(defs ...Definition) {
	mu.Lock()
	defer mu.Unlock()
	for _, d := range defs {
		if !ValidID(d.ID) {
			panic(fmt.Sprintf("checks: invalid check id %q", d.ID))
		}
		if old, ok := registry[d.ID]; ok && old.Title != d.Title {
			panic(fmt.Sprintf("checks: id %q registered twice", d.ID))
		}
		registry[d.ID] = d
	}
}

// Lookup returns the definition of id.
func Lookup(id string) (Definition, bool) {
	mu.RLock()
	defer mu.RUnlock()
	d, ok := registry[id]
	return d, ok
}

// All returns every registered definition sorted by ID.
func All() []Definition {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Definition, 0, len(registry))
	for _, d := range registry {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
