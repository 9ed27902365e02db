# mnpool: build, test, install and package.
#
#   make                      build the five programs into bin/
#   make test                 the full test suite (scripts/test.sh, as CI)
#   make install              install under PREFIX (default /usr/local), into
#                             DESTDIR when set; configuration goes to /etc/mnpool
#   make packages             .deb and .rpm in dist/ (nfpm, see build/)
#   make pkgtest              install the .deb in a clean Debian 12 chroot
#
# The version comes from git (tag, commit, dirty) through -ldflags -X;
# override with VERSION=v1.2.0 COMMIT=... DIRTY=false.

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
STATEDIR   ?= /var/lib/mnpool
GO         ?= go
GOARCH     ?= $(shell $(GO) env GOARCH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DIRTY   ?= $(shell test -z "$$(git status --porcelain --untracked-files=no 2>/dev/null)" && echo false || echo true)
DATE    ?= $(shell git log -1 --format=%cI 2>/dev/null)

PKG      := github.com/mnpool/mnpool/internal/buildinfo
LDFLAGS  := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT) -X $(PKG).dirty=$(DIRTY) -X $(PKG).date=$(DATE)
PROGRAMS := mnpool snmove makedhcp makemn mnpoold
UNITS    := mnpoold.service mnpool-console.service mnpool-dns.service
ETCFILES := db mnpoold.env mnpool-console.env mnpool-dns.env
GEN      := out/gen
STAGE    := out/stage

.PHONY: all build test test-stress gen install uninstall packages pkgtest clean
.DELETE_ON_ERROR:

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(PROGRAMS))

test:
	bash scripts/test.sh

test-stress:
	bash scripts/test.sh --stress

# Man pages and completion files, generated from the cobra commands.
gen:
	rm -rf $(GEN)
	cd build && $(GO) run . man ../$(GEN)/man1
	cd build && $(GO) run . completion ../$(GEN)/completion

install: build gen
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/site-functions \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d $(DESTDIR)$(DATADIR)/doc/mnpool \
		$(DESTDIR)$(SYSCONFDIR)/mnpool
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/mnpool/sshkeys $(DESTDIR)$(STATEDIR)
	install -m 0755 $(addprefix bin/,$(PROGRAMS)) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(GEN)/man1/* $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(GEN)/completion/bash/* $(DESTDIR)$(DATADIR)/bash-completion/completions/
	install -m 0644 $(GEN)/completion/zsh/* $(DESTDIR)$(DATADIR)/zsh/site-functions/
	install -m 0644 $(GEN)/completion/fish/* $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/
	# The units name the programs where this install puts them (the same
	# path `mnpool console conserver` writes into conserver.cf).
	for u in $(UNITS); do \
		sed 's#/usr/bin/#$(BINDIR)/#g' packaging/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	# Configuration is never overwritten by an install.
	for f in $(ETCFILES); do \
		test -e $(DESTDIR)$(SYSCONFDIR)/mnpool/$$f || install -m 0644 packaging/etc/$$f $(DESTDIR)$(SYSCONFDIR)/mnpool/$$f || exit 1; \
	done
	chmod 0600 $(DESTDIR)$(SYSCONFDIR)/mnpool/db
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DATADIR)/doc/mnpool/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGRAMS)) $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -f $(DESTDIR)$(MANDIR)/man1/mnpool*.1.gz $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(addsuffix .1.gz,$(PROGRAMS)))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/bash-completion/completions/,$(PROGRAMS))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/zsh/site-functions/_,$(PROGRAMS))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/,$(addsuffix .fish,$(PROGRAMS)))
	rm -rf $(DESTDIR)$(DATADIR)/doc/mnpool
	@echo "configuration in $(SYSCONFDIR)/mnpool and the pool in $(STATEDIR) are kept"

# .deb and .rpm from a staged `make install` with PREFIX=/usr.
packages:
	rm -rf $(STAGE) dist
	$(MAKE) install DESTDIR=$(CURDIR)/$(STAGE) PREFIX=/usr SYSCONFDIR=/etc
	cd build && $(GO) run . package -stage ../$(STAGE) -out ../dist -version $(VERSION) -arch $(GOARCH)

pkgtest: packages
	bash scripts/pkgtest.sh dist/*.deb

clean:
	rm -rf bin out dist
