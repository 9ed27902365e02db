// Package service names the services a pool member runs for the nodes it
// serves (xCAT's servicenode table columns): DHCP, DNS, NTP, TFTP,
// Console, DB. All lists them in display order; Parse reads one.
//
// It is a leaf: pool imports it (pool.Member.Services).
package service

import (
	"fmt"
	"strings"

	"github.com/mnpool/mnpool/pool/internal/valid"
)

// Service is a service a member runs for the nodes it serves (xCAT's
// servicenode table columns).
type Service string

// Services a member can run.
const (
	DHCP    Service = "dhcp"
	DNS     Service = "dns"
	NTP     Service = "ntp"
	TFTP    Service = "tftp"
	Console Service = "console"
	DB      Service = "db"
)

// All lists every service, in display order.
func All() []Service {
	return []Service{DHCP, DNS, NTP, TFTP, Console, DB}
}

// Parse checks a service name.
func Parse(s string) (Service, error) {
	for _, v := range All() {
		if string(v) == strings.ToLower(strings.TrimSpace(s)) {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: service %q: want one of %s", valid.ErrInvalid, s, servicesList())
}

func servicesList() string {
	var s []string
	for _, v := range All() {
		s = append(s, string(v))
	}
	return strings.Join(s, ", ")
}
