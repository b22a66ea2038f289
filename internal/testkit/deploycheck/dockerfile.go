package deploycheck

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// GoBuild is one `go build` of a Dockerfile RUN instruction.
type GoBuild struct {
	Env      []string // KEY=value words before `go` (e.g. CGO_ENABLED=0)
	Flags    []string // the build flags, -o excluded
	Output   string   // the -o value
	Packages []string // the package patterns
}

// Binaries are the names `go build -o DIR/` gives the packages: their last element.
func (b GoBuild) Binaries() []string {
	var names []string
	for _, p := range b.Packages {
		names = append(names, path.Base(p))
	}
	return names
}

// DockerfileInfo is what the checks need of deploy/Dockerfile.
type DockerfileInfo struct {
	Stages   []string  // the `AS` names, in order
	Builds   []GoBuild // every go build of RUN instructions
	Copied   []string  // the files COPY --from=<stage> copies, as written
	CopyDest string    // the destination of that COPY
}

// ParseDockerfile reads the instructions of a Dockerfile (continuation lines joined, comments
// dropped) and extracts the stages, the go build commands and the COPY --from lines.
func ParseDockerfile(file string) (DockerfileInfo, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return DockerfileInfo{}, err
	}
	var info DockerfileInfo
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	for _, in := range instrs {
		f := strings.Fields(in)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				info.Stages = append(info.Stages, f[3])
			}
		case "RUN":
			for _, seg := range splitShell(shellFields(strings.TrimSpace(in[len(f[0]):]))) {
				if b, ok := parseGoBuild(seg); ok {
					info.Builds = append(info.Builds, b)
				}
			}
		case "COPY":
			if len(f) >= 3 && strings.HasPrefix(f[1], "--from=") {
				info.Copied = append(info.Copied, f[2:len(f)-1]...)
				info.CopyDest = f[len(f)-1]
			}
		}
	}
	if len(info.Builds) == 0 {
		return info, fmt.Errorf("%s: no go build in any RUN", filepath.Base(file))
	}
	return info, nil
}

// splitShell splits a RUN command's words at && and ;.
func splitShell(words []string) [][]string {
	var out [][]string
	var cur []string
	for _, w := range words {
		if w == "&&" || w == ";" || w == "||" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	return append(out, cur)
}

func parseGoBuild(words []string) (GoBuild, bool) {
	var b GoBuild
	i := 0
	for ; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "--mount=") {
			continue
		}
		if strings.Contains(w, "=") && !strings.HasPrefix(w, "-") {
			b.Env = append(b.Env, w)
			continue
		}
		break
	}
	if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
		return GoBuild{}, false
	}
	for j := i + 2; j < len(words); j++ {
		w := words[j]
		switch {
		case w == "-o" && j+1 < len(words):
			j++
			b.Output = words[j]
		case strings.HasPrefix(w, "-o="):
			b.Output = strings.TrimPrefix(w, "-o=")
		case strings.HasPrefix(w, "-"):
			b.Flags = append(b.Flags, w)
		default:
			b.Packages = append(b.Packages, w)
		}
	}
	return b, len(b.Packages) > 0
}

// shellFields splits a shell command into words, honouring single and double quotes (which it
// removes): -ldflags='-s -w' is one word, -ldflags=-s -w.
func shellFields(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
