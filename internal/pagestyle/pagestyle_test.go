package pagestyle

import (
	"regexp"
	"strings"
	"testing"
)

// TestSchemes: every colour variable the rules use is defined for the
// light scheme and again for the dark one, so that no element keeps a
// light colour on a dark page.
func TestSchemes(t *testing.T) {
	dark := strings.Index(CSS, "@media (prefers-color-scheme: dark)")
	if dark < 0 || !strings.Contains(CSS, "color-scheme: light dark") {
		t.Fatal("no dark scheme")
	}
	light, darkRule := CSS[:dark], CSS[dark:strings.Index(CSS[dark:], "} }")+dark]
	used := regexp.MustCompile(`var\((--[a-z]+)\)`).FindAllStringSubmatch(CSS, -1)
	if len(used) == 0 {
		t.Fatal("no variables used")
	}
	for _, m := range used {
		if !strings.Contains(light, m[1]+":") {
			t.Errorf("%s is not defined for the light scheme", m[1])
		}
		if !strings.Contains(darkRule, m[1]+":") {
			t.Errorf("%s is not defined for the dark scheme", m[1])
		}
	}
}
