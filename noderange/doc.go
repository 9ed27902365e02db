// Package noderange implements xCAT's noderange syntax, the way every mnpool
// command selects nodes. It depends on nothing else in mnpool.
//
// A noderange is a comma-separated list of terms; the result is the union of
// the terms, in natural order (cn2 before cn10), without duplicates:
//
//	cn001                   a node
//	compute                 a group: its member nodes
//	all                     every node (unless a node or group is called all)
//	cn001,cn002,sn1         several
//	cn[001-100]             a range; the padding of the first number is kept
//	cn[1-10]                cn1 ... cn10
//	cn[1-4,7,10-12]         several ranges in one bracket
//	rack[1-2]node[01-04]    every combination: rack1node01 ... rack2node04
//	cn001-cn100             the same as cn[001-100]; the two ends must be
//	                        equal except for one number, as in xCAT
//	cn001:cn100             the same, written with ':'
//	ib-cn01-ib-cn04         xCAT splits at the middle '-' of an odd count
//	cn01+3                  cn01 and the next 3: cn01,cn02,cn03,cn04; the
//	                        number counted is the first one before '.' or the end
//	group1-group3           ranges may name groups too: group1,group2,group3
//	/cn0[1-4].*             the nodes whose whole name matches a Go (RE2)
//	                        regular expression, anchored at both ends as xCAT
//	                        anchors it (^...$); it ends at a ',' or '@' outside
//	                        parentheses, braces and brackets
//	^/etc/mnpool/racks      the noderanges in a file, one per line, '#' starts a
//	                        comment; a line -name excludes from the file's
//	                        nodes; a file may not name another file (only
//	                        with WithFileOpener)
//	5, 10-12, 10+2          a bare number is node5, node10... as in xCAT, unless
//	                        a node or group has that name (see WithNumericPrefix)
//
// Operators:
//
//	all,-cn005              '-' at the start of a term excludes it. Exclusions
//	                        win over inclusions whatever their order, so
//	                        -cn005,all is the same as all,-cn005
//	gpu@rack1               '@' intersects: the nodes in both. It binds tighter
//	                        than ',': a,b@c is a and the nodes in both b and c
//	(a,b)@c  all,-(a@b)     parentheses group; exclusions inside parentheses
//	                        apply inside them only
//
// A name is resolved as xCAT resolves it: a node if one has that name, else
// a group, else the range or number it spells. Names that are none of these
// make Expand fail with an *UnknownError that lists all of them; a noderange
// that selects nothing fails with ErrEmpty. Spaces around terms and
// operators are ignored.
//
// Not supported from xCAT: attribute selections (nodehm.mgt==ipmi) and
// dynamic groups; a Universe may provide the latter as ordinary groups.
//
// Parse checks only the syntax and needs no data; Range.Expand resolves
// against a Universe, such as a Static built with NewStatic. Compress is the
// inverse of Expand for display, and Compare and Less give the natural order
// used for listings.
package noderange
