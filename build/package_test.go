package main

import "testing"

func TestPackageVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.0":                  "1.2.0",
		"v1.2.0-dirty":            "1.2.0+dirty",
		"v1.2.0-3-gabc1234":       "1.2.0+git3.abc1234",
		"v1.2.0-3-gabc1234-dirty": "1.2.0+git3.abc1234.dirty",
		"abc1234":                 "0.0.0+git.abc1234",
		"abc1234-dirty":           "0.0.0+git.abc1234.dirty",
	} {
		got, err := packageVersion(in)
		if err != nil || got != want {
			t.Errorf("packageVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "latest", "v1.2", "1.2.0; rm -rf /"} {
		if _, err := packageVersion(bad); err == nil {
			t.Errorf("packageVersion(%q) accepted", bad)
		}
	}
}
