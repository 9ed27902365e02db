package locking_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// Two members take the same cluster-wide lock: the second, trying while
// the first holds it, is refused; after the release it gets the lock with
// a higher fencing token.
func ExampleLocker_Lock() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "locking-example-")
	defer os.RemoveAll(dir)
	db := "sqlite:" + filepath.Join(dir, "pool.db")
	s1, err := pool.Open(ctx, db, pool.WithMigrate(), pool.WithSelf("sn1"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s1.Close()
	s2, _ := pool.Open(ctx, db, pool.WithSelf("sn2"))
	defer s2.Close()
	lk1, _ := locking.New(s1)
	lk2, _ := locking.New(s2)

	l, err := lk1.Lock(ctx, "install:/install/netboot/rhels9", locking.WithTTL(time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sn1 holds the lock with token", l.Token())

	_, err = lk2.TryLock(ctx, "install:/install/netboot/rhels9")
	fmt.Println("sn2 refused:", errors.Is(err, locking.ErrLocked))

	_ = l.Unlock(ctx)
	l2, err := lk2.Lock(ctx, "install:/install/netboot/rhels9")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l2.Unlock(ctx)
	fmt.Println("sn2 holds the lock with token", l2.Token())
	// Output:
	// sn1 holds the lock with token 1
	// sn2 refused: true
	// sn2 holds the lock with token 2
}
