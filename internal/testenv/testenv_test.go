package testenv

import (
	"testing"
	"time"
)

func TestTimeout(t *testing.T) {
	for env, want := range map[string]time.Duration{
		"": 10 * time.Second, "1": 10 * time.Second, "3": 30 * time.Second, "2.5": 25 * time.Second,
		"0": 10 * time.Second, "-2": 10 * time.Second, "fast": 10 * time.Second,
	} {
		t.Setenv(EnvScale, env)
		if got := Timeout(10 * time.Second); got != want {
			t.Errorf("%s=%q: Timeout(10s) = %v, want %v", EnvScale, env, got, want)
		}
	}
}
