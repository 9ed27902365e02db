package dispatch

import (
	"bufio"
	"bytes"
	"strings"
)

// ParseEnvFile reads an xdsh -E environment file: one NAME=VALUE per
// line, optionally preceded by "export "; blank lines and lines starting
// with '#' are skipped. A value may be wrapped in single or double quotes
// (removed, no other expansion). Anything else is an error naming the
// line, so nothing reaches a shell unchecked.
func ParseEnvFile(name string, data []byte) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || !envNameRE.MatchString(k) {
			return nil, errorf(ErrInvalid, "%s line %d: %q (want NAME=VALUE with NAME of letters, digits and '_')", name, n, sc.Text())
		}
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env, sc.Err()
}
