package pki

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultReloadCheck is how often a Source looks at its files again.
const DefaultReloadCheck = 5 * time.Second

// Source holds credentials loaded from files and loads them again when
// one of the files changes (size or modification time), so a broker
// picks up a renewed certificate or a rotated CA bundle without a
// restart. A reload that fails keeps the previous credentials (Err says
// why). Safe for concurrent use.
type Source struct {
	load  func() (*Credentials, error)
	files []string
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	cur     *Credentials
	stamp   string
	checked time.Time
	err     error
}

// NewSource loads the credentials with load (which reads files) and
// returns a Source that loads them again when a file changes, looking at
// most every `every` (DefaultReloadCheck when 0; negative: at every
// call). Reloads and failed reloads are logged to log (nil: discard);
// no key material is ever logged.
func NewSource(load func() (*Credentials, error), every time.Duration, log *slog.Logger, files ...string) (*Source, error) {
	if every == 0 {
		every = DefaultReloadCheck
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Source{load: load, files: files, every: every, log: log}
	stamp := s.stampNow()
	c, err := load()
	if err != nil {
		return nil, err
	}
	s.cur, s.stamp, s.checked = c, stamp, time.Now()
	return s, nil
}

// WatchMember is a Source of member's credentials in d: a certificate
// naming another member is refused (on the first load and on reloads).
func WatchMember(d Dir, member string, log *slog.Logger) (*Source, error) {
	load := func() (*Credentials, error) {
		c, err := LoadMember(d)
		if err == nil && c.Identity.Name != member {
			return nil, fmt.Errorf("%w: %s names member %s, but this is %s", ErrInvalid, d.MemberCert(), c.Identity.Name, member)
		}
		return c, err
	}
	return NewSource(load, 0, log, d.MemberCert(), d.MemberKey(), d.CACert())
}

func (s *Source) stampNow() string {
	var b strings.Builder
	for _, f := range s.files {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s:-;", f)
		}
	}
	return b.String()
}

// Credentials returns the current credentials, reloading them first when
// a file changed since the last look.
func (s *Source) Credentials() *Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.every > 0 && time.Since(s.checked) < s.every {
		return s.cur
	}
	s.checked = time.Now()
	stamp := s.stampNow()
	if stamp == s.stamp {
		return s.cur
	}
	c, err := s.load()
	if err != nil {
		// Keep serving with what we have; try again at the next change
		// or look.
		if s.err == nil || s.err.Error() != err.Error() {
			s.log.Warn("pki: certificate files changed but cannot be loaded; keeping the previous ones", "files", s.files, "err", err)
		}
		s.err = err
		return s.cur
	}
	s.log.Info("pki: certificate files reloaded", "name", c.Identity.Name, "expires", c.Cert.Leaf.NotAfter.UTC())
	s.cur, s.stamp, s.err = c, stamp, nil
	return s.cur
}

// Err is why the last reload failed (nil when it did not).
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ServerConfig is a server configuration that takes the current
// credentials for every handshake (see Credentials.ServerConfig).
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cfg := s.Credentials().ServerConfig()
			if cfg == nil {
				return nil, fmt.Errorf("%w: not a member certificate", ErrInvalid)
			}
			return cfg, nil
		},
	}
}
