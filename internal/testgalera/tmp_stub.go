package testgalera

import (
	"database/sql"
	"testing"
)

type Env struct{}

func Open(t testing.TB, _ ...Option) *Env { t.Skip("stub"); return nil }
func (e *Env) DSN() string   { return "" }

type Option int

func WithFaults() Option                         { return 0 }
func (e *Env) NodeDSN(int) string                { return "" }
func (e *Env) N() int                            { return 3 }
func (e *Env) Addr(int) string                   { return "" }
func (e *Env) Kill(testing.TB, int)              {}
func (e *Env) Isolate(testing.TB, int)           {}
func (e *Env) DB(testing.TB, int) *sql.DB { return nil }
