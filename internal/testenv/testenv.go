// Package testenv holds what every test of mnpool shares about its
// environment: one scale factor for the timeouts of tests.
//
// A test's timeout is how long it waits before it declares that something
// will never happen; it is never an assertion about speed. On a busy
// machine (CI with other builds, -race, scripts/test.sh --stress) every
// timeout is multiplied by MNPOOL_TEST_TIMEOUT_SCALE (default 1), so the
// suite holds without one test's number being raised by hand.
package testenv

import (
	"os"
	"strconv"
	"time"
)

// EnvScale is the environment variable with the timeout scale factor.
const EnvScale = "MNPOOL_TEST_TIMEOUT_SCALE"

// Scale is the factor from $MNPOOL_TEST_TIMEOUT_SCALE: a positive number
// (1.5, 4), else 1.
func Scale() float64 {
	f, err := strconv.ParseFloat(os.Getenv(EnvScale), 64)
	if err != nil || f <= 0 {
		return 1
	}
	return f
}

// Timeout is d scaled by Scale: use it for every "give up after" in a test
// (context deadlines, select on time.After, require.Eventually's waitFor),
// never for a poll interval or for a duration the test means exactly.
func Timeout(d time.Duration) time.Duration {
	return time.Duration(float64(d) * Scale())
}
