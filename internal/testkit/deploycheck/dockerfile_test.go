package deploycheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDockerfile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "Dockerfile")
	src := "FROM golang:1 AS build\n# comment\nRUN --mount=type=cache,target=/x \\\n    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ \\\n        ./a/cmd/one ./b/two && echo done\nFROM scratch\nCOPY --from=build /out/one /out/two /usr/local/bin/\n"
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := ParseDockerfile(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Builds) != 1 {
		t.Fatalf("builds %+v", info.Builds)
	}
	b := info.Builds[0]
	if !slices.Equal(b.Env, []string{"CGO_ENABLED=0"}) || !slices.Equal(b.Flags, []string{"-trimpath", "-ldflags=-s -w"}) ||
		b.Output != "/out/" || !slices.Equal(b.Packages, []string{"./a/cmd/one", "./b/two"}) {
		t.Errorf("parsed %+v", b)
	}
	if !slices.Equal(info.Stages, []string{"build"}) || !slices.Equal(info.Copied, []string{"/out/one", "/out/two"}) || info.CopyDest != "/usr/local/bin/" {
		t.Errorf("parsed %+v", info)
	}
}

// TestDockerfileBuildsBothBinaries: the Dockerfile builds the API and the worker and copies
// exactly those into the image. Where a container engine answers, its build stage is built;
// otherwise the same `go build` lines (environment, flags, packages) run here into a temporary
// directory.
func TestDockerfileBuildsBothBinaries(t *testing.T) {
	t.Parallel() // the go build takes minutes on a cold cache: let the other checks run meanwhile
	root := repoRoot(t)
	info, err := ParseDockerfile(filepath.Join(root, Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	var built []string
	for _, b := range info.Builds {
		for _, bin := range b.Binaries() {
			built = append(built, strings.TrimSuffix(b.Output, "/")+"/"+bin)
		}
	}
	for _, want := range []string{"onboarding-api", "onboarding-worker"} {
		if !slices.ContainsFunc(built, func(p string) bool { return filepath.Base(p) == want }) {
			t.Errorf("the Dockerfile does not build %s (builds %v)", want, built)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(info.Copied)), slices.Sorted(slices.Values(built))) {
		t.Errorf("the final stage copies %v, the build produces %v", info.Copied, built)
	}
	if !slices.Contains(info.Stages, "build") {
		t.Errorf("no stage named build: %v", info.Stages)
	}

	if dockerAvailable() {
		t.Log("container engine found: building the Dockerfile's build stage")
		cmd := exec.Command("docker", "build", "--target", "build", "-f", filepath.Join(root, Dockerfile), root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker build: %v\n%s", err, out)
		}
		return
	}
	t.Log("no container engine: running the Dockerfile's go build lines")
	for _, b := range info.Builds {
		out := t.TempDir()
		args := append([]string{"build"}, b.Flags...)
		args = append(args, "-o", out+string(filepath.Separator))
		args = append(args, b.Packages...)
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), b.Env...)
		start := time.Now()
		if output, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v go %s: %v\n%s", b.Env, strings.Join(args, " "), err, output)
		}
		t.Logf("%v go %s: %s", b.Env, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		for _, bin := range b.Binaries() {
			st, err := os.Stat(filepath.Join(out, bin))
			if err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("go build produced no executable %s: %v", bin, err)
			}
		}
	}
}

// dockerAvailable reports whether a container engine answers (`docker info` within 10 s).
func dockerAvailable() bool {
	if _, err := exec.LookPath("docker"); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info").Run() == nil
}
