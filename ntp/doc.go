// Package ntp keeps the pool on one time: chrony.conf for a compute node
// (its servicenodes, in list order) and for a member (the site's external
// servers, the MN and other members, and local orphan mode so that a pool
// cut off from the outside still agrees with itself), a parse check of
// that file with chronyd itself, and Check, which asks NTP servers
// (github.com/beevik/ntp) for offset, stratum, round trip and
// kiss-of-death, with Assess turning the answers of the members into clock
// skew warnings for `mnpool status`.
package ntp
