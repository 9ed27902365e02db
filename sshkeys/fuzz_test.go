package sshkeys

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadAuthorizedKeys feeds arbitrary files to the authorized_keys
// reader and to the member renderer built on it, and checks that
//   - the reader never panics and gives back every byte, line by line;
//   - a file whose markers are broken is refused, never guessed at;
//   - otherwise the rendered file keeps every hand-added line except
//     compute keys, accepts no compute key, and renders to itself again.
func FuzzReadAuthorizedKeys(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("\n\n"))
	f.Add([]byte(handLines(f)))
	f.Add([]byte(BeginMarker + "\n" + EndMarker))
	f.Add([]byte(BeginMarker + "\r\nx\r\n" + EndMarker + "\r\n"))
	f.Add([]byte(`command="echo \"hi\"",from="a" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqLUxFGeXYVYf75oMIGfCoC6vB7c2jpe+SmQbeiZJua x`))
	golden, _ := filepath.Glob(filepath.Join("testdata", "authorized_keys.*"))
	for _, g := range golden {
		data, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	keys := fixedPublicKeys(f, true)
	spec := AuthorizedKeysSpec{Target: TargetMember, Name: "sn1", Keys: keys}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, blockErr := ReadAuthorizedKeys(data)
		texts := make([]string, len(lines))
		for i, l := range lines {
			texts[i] = l.Text
			if l.Num != i+1 {
				t.Fatalf("line %d numbered %d", i+1, l.Num)
			}
			if (l.Kind == LineKey) != (l.Key != nil) || (l.Kind == LineInvalid) != (l.Err != nil) {
				t.Fatalf("line %d: kind %s with key %v, err %v", l.Num, l.Kind, l.Key != nil, l.Err)
			}
		}
		if joined, want := strings.Join(texts, "\n"), strings.TrimSuffix(string(data), "\n"); joined != want {
			t.Fatalf("lines do not give back the input:\n%q\n%q", joined, want)
		}

		out, removed, err := RenderAuthorizedKeys(data, spec)
		if blockErr != nil {
			if !errors.Is(err, ErrBadBlock) || !errors.Is(blockErr, ErrBadBlock) {
				t.Fatalf("broken markers: reader says %v, renderer %v; want ErrBadBlock from both", blockErr, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		dropped := map[int]bool{}
		for _, r := range removed {
			dropped[r.Line] = true
		}
		var wantHand []string
		for _, l := range lines {
			if !l.Managed && !dropped[l.Num] {
				wantHand = append(wantHand, l.Text)
			}
		}
		outLines, err := ReadAuthorizedKeys(out)
		if err != nil {
			t.Fatalf("rendered file does not read back: %v", err)
		}
		var gotHand []string
		for _, l := range outLines {
			if !l.Managed {
				gotHand = append(gotHand, l.Text)
			}
			if l.Kind == LineKey && containsKey(keys.Compute, l.Key) {
				t.Fatalf("rendered member file accepts a compute key on line %d", l.Num)
			}
		}
		if strings.Join(gotHand, "\n") != strings.Join(wantHand, "\n") {
			t.Fatalf("hand-added lines changed:\nwant %q\ngot  %q", wantHand, gotHand)
		}
		again, _, err := RenderAuthorizedKeys(out, spec)
		if err != nil || string(again) != string(out) {
			t.Fatalf("rendering is not idempotent (err %v)", err)
		}
	})
}
