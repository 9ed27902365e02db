package agent

import "github.com/mnpool/mnpool/pool"

// guardMove fences every write transaction of a failover's move with the
// lease: each batch commits only while the lease row still carries this
// holding's token (locking.Guard writes that row, so on Galera a takeover
// committed at the same time on another node conflicts with the batch).
func guardMove(req pool.MoveRequest, l lease) pool.MoveRequest {
	req.Guard = l.Guard
	return req
}
