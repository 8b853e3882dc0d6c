package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	vcs := func(main string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/remotemcp/remotemcp", Version: main}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tt := range []struct {
		name             string
		stampedV, stampC string
		bi               *debug.BuildInfo
		wantV, wantC     string
	}{
		{"make build stamps both", "v1.2.3-4-gabcdef0-dirty", "abcdef0123", vcs("(devel)", "vcs.revision", "ffff"), "v1.2.3-4-gabcdef0-dirty", "abcdef0123"},
		{"go install @version", "", "", vcs("v1.2.3"), "v1.2.3", "unknown"},
		{"go build in a checkout", "", "", vcs("v0.0.0-20261207235500-94b28a0c1e2f+dirty", "vcs.revision", "94b28a0c1e2f", "vcs.modified", "true"), "v0.0.0-20261207235500-94b28a0c1e2f+dirty", "94b28a0c1e2f-dirty"},
		{"go build with -buildvcs=false", "", "", vcs("(devel)"), "devel", "unknown"},
		{"clean checkout", "", "", vcs("(devel)", "vcs.revision", "94b28a0c1e2f", "vcs.modified", "false"), "devel", "94b28a0c1e2f"},
		{"stamped version, commit from the go command", "v2.0.0", "", vcs("(devel)", "vcs.revision", "abc"), "v2.0.0", "abc"},
		{"no build information", "", "", nil, "devel", "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, c := resolveVersion(tt.stampedV, tt.stampC, tt.bi)
			if v != tt.wantV || c != tt.wantC {
				t.Errorf("resolveVersion = %q, %q; want %q, %q", v, c, tt.wantV, tt.wantC)
			}
		})
	}
}

// TestVersionCommand: `remotemcp --version`, `-version` and `version` print
// the version, the commit and the Go version, and serve nothing.
func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{arg}, envOf(nil), &stdout, &stderr); err != nil {
			t.Fatalf("run %s: %v", arg, err)
		}
		want := "remotemcp " + version + "\ncommit " + commit + "\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
		if stdout.String() != want || stderr.Len() != 0 {
			t.Errorf("run %s: stdout %q, stderr %q; want stdout %q", arg, stdout.String(), stderr.String(), want)
		}
	}
}

// TestRelease runs make release for this machine's platform, as a user
// would, and checks what comes out: one archive named for the version git
// describes, its checksum in SHA256SUMS, the binary and README.md in it;
// the binary statically linked (no ELF interpreter, no dynamic section:
// it runs on a scratch image) and reporting that version. make release
// runs make build, so this checks make build too.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary (-short)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	wantVersion := "devel"
	if out, err := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		wantVersion = strings.TrimSpace(string(out))
	}
	dist := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.CommandContext(t.Context(), "make", "-s", "-C", root, "release", "PLATFORMS="+platform, "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	name := "remotemcp_" + wantVersion + "_" + runtime.GOOS + "_" + runtime.GOARCH
	archive, err := os.ReadFile(filepath.Join(dist, name+".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	if want := hex.EncodeToString(sum[:]) + "  " + name + ".tar.gz\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}
	unpacked := t.TempDir()
	files := untar(t, archive, unpacked)
	if want := []string{name + "/README.md", name + "/remotemcp"}; !slices.Equal(files, want) {
		t.Fatalf("the archive holds %q, want %q", files, want)
	}
	bin := filepath.Join(unpacked, name, "remotemcp")
	if runtime.GOOS == "linux" {
		assertStatic(t, bin)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if first != "remotemcp "+wantVersion {
		t.Errorf("--version says %q, want %q", out, "remotemcp "+wantVersion)
	}
}

// untar unpacks a gzipped tar archive into dir and lists its regular files.
func untar(t *testing.T, archive []byte, dir string) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var files []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s belongs to %d:%d in the archive, want 0:0", h.Name, h.Uid, h.Gid)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		files = append(files, h.Name)
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode)&0o777)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, bufio.NewReader(tr)); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	slices.Sort(files)
	return files
}

// assertStatic fails unless the ELF binary at path is statically linked:
// no interpreter (the dynamic loader) and no dynamic section.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: it is dynamically linked (built with cgo?)", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %q", path, libs)
	}
}
