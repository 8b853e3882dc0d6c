package main

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUsageErrors: a command line that does not parse gets one line naming
// the problem and one pointing to --help, never the whole usage.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "80"}, "remotemcp: flag provided but not defined: -port\nRun 'remotemcp --help' for the flags and commands.\n"},
		{[]string{"--listen"}, "remotemcp: flag needs an argument: -listen\nRun 'remotemcp --help' for the flags and commands.\n"},
		{[]string{"--session-ttl", "soon"}, "remotemcp: invalid value \"soon\" for flag -session-ttl: parse error\nRun 'remotemcp --help' for the flags and commands.\n"},
		{[]string{"serve"}, "remotemcp: unexpected argument \"serve\" (flags start with --)\nRun 'remotemcp --help' for the flags and commands.\n"},
		{[]string{"signing-key", "--bogus"}, "remotemcp: flag provided but not defined: -bogus\nRun 'remotemcp signing-key --help' for the flags and commands.\n"},
		{[]string{"signing-key", "extra"}, "remotemcp: unexpected argument \"extra\" (flags start with --)\nRun 'remotemcp signing-key --help' for the flags and commands.\n"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, envOf(nil), &stdout, &stderr)
			if code := exitCode(err, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if stderr.String() != tt.want || stdout.Len() != 0 {
				t.Errorf("stderr:\n%s\nstdout:\n%s\nwant stderr:\n%s", stderr.String(), stdout.String(), tt.want)
			}
		})
	}
	// A configuration error is one line too, without the pointer: it
	// names the flag and what to do already.
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"--log-format", "xml"}, envOf(nil), &bytes.Buffer{}, &stderr)
	if code := exitCode(err, &stderr); code != 2 || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("exit code %d, stderr %q: want 2 and one line", code, stderr.String())
	}
}

// TestHelp: --help goes to stderr with exit code 0, and lists the commands
// as well as the flags; signing-key --help lists its own flags.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--help"}, envOf(nil), &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 0 {
		t.Fatalf("exit code %d (%v), want 0", code, err)
	}
	for _, s := range []string{"Usage: remotemcp [flags]", "remotemcp signing-key [--rotate FILE]", "remotemcp version", "--version", "REMOTEMCP_LISTEN", "-listen string", "-upstream-scopes"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("--help does not mention %q:\n%s", s, stderr.String())
		}
	}
	stderr.Reset()
	err = run(t.Context(), []string{"signing-key", "--help"}, envOf(nil), &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 0 || !strings.Contains(stderr.String(), "-rotate string") {
		t.Errorf("signing-key --help: exit code %d, stderr:\n%s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("help on stdout: %q", stdout.String())
	}
}

// helpFlag is one flag as --help shows it.
type helpFlag struct {
	typ, def string // the value's type ("" for a bool) and the default ("" if none)
}

// helpFlags reads the flags and their defaults from the --help output.
func helpFlags(t *testing.T) map[string]helpFlag {
	t.Helper()
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, envOf(nil), &bytes.Buffer{}, &stderr); !errors.Is(err, errHelp) {
		t.Fatalf("--help: %v", err)
	}
	_, list, ok := strings.Cut(stderr.String(), "\nFlags:\n")
	if !ok {
		t.Fatalf("no Flags: in --help:\n%s", stderr.String())
	}
	head := regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	def := regexp.MustCompile(`\(default (.*)\)$`)
	flags := map[string]helpFlag{}
	var name string
	for _, line := range strings.Split(list, "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			name = m[1]
			flags[name] = helpFlag{typ: m[2]}
		} else if m := def.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "    \t") {
			f := flags[name]
			f.def = m[1]
			if uq, err := strconv.Unquote(m[1]); err == nil {
				f.def = uq
			}
			flags[name] = f
		}
	}
	if len(flags) < 40 {
		t.Fatalf("read only %d flags from --help:\n%s", len(flags), stderr.String())
	}
	return flags
}

// readmeFlags reads the flag table of the README's Configuration section:
// each flag with the default column's backquoted values (a row may name
// several flags, with one value each).
func readmeFlags(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	code := regexp.MustCompile("`([^`]*)`")
	flags := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 3 {
			t.Fatalf("README flag row without a default column: %s", line)
		}
		names := code.FindAllStringSubmatch(cells[0], -1)
		defs := code.FindAllStringSubmatch(cells[1], -1)
		for i, n := range names {
			d := ""
			if len(names) == 1 && len(defs) > 0 {
				d = defs[0][1]
			} else if i < len(defs) {
				d = defs[i][1]
			}
			flags[strings.TrimPrefix(n[1], "--")] = d
		}
	}
	return flags
}

// TestHelpMatchesReadme: the README's flag table names exactly the flags
// --help lists, and where --help shows a default the README shows the same
// one (durations compared as durations: 720h is 720h0m0s).
func TestHelpMatchesReadme(t *testing.T) {
	help, readme := helpFlags(t), readmeFlags(t)
	for name, h := range help {
		d, ok := readme[name]
		if !ok {
			t.Errorf("--%s is in --help but not in the README's flag table", name)
			continue
		}
		if h.def == "" {
			continue
		}
		if h.typ == "duration" {
			hd, err1 := time.ParseDuration(h.def)
			rd, err2 := time.ParseDuration(d)
			if err1 != nil || err2 != nil || hd != rd {
				t.Errorf("--%s: default %s in --help, %q in the README", name, h.def, d)
			}
		} else if d != h.def {
			t.Errorf("--%s: default %q in --help, %q in the README", name, h.def, d)
		}
	}
	for name := range readme {
		if _, ok := help[name]; !ok {
			t.Errorf("the README's flag table has --%s, which --help does not list", name)
		}
	}
}
