package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are stamped by make build with
// -ldflags "-X main.version=… -X main.commit=…" (git describe --tags
// --always --dirty, and the full commit hash). A build without them (go
// build, go install, go run) takes both from the build information the go
// command records: see resolveVersion. version is the serverInfo version
// too.
var version, commit string

func init() {
	bi, _ := debug.ReadBuildInfo()
	version, commit = resolveVersion(version, commit, bi)
}

// resolveVersion is the version and commit of this binary: the stamped
// ones where make build set them; else the module version the go command
// recorded (v1.2.3 for `go install …@v1.2.3`, a pseudo-version such as
// v0.0.0-20261207235500-94b28a0c1e2f+dirty for a go build in a git
// checkout) and the VCS revision, with "-dirty" when the work tree had
// changes; else "devel" and "unknown" (a test binary records neither).
func resolveVersion(stampedVersion, stampedCommit string, bi *debug.BuildInfo) (v, c string) {
	v, c = stampedVersion, stampedCommit
	if bi != nil {
		var rev string
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if c == "" {
			c = rev
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

// isVersionCommand reports whether arg asks for the version: `remotemcp
// version`, `remotemcp --version` or `remotemcp -version`.
func isVersionCommand(arg string) bool {
	return arg == "version" || arg == "--version" || arg == "-version"
}

// printVersion writes the version, the commit and the Go toolchain and
// platform, one to a line.
func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "remotemcp %s\ncommit %s\n%s %s/%s\n", version, commit,
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
