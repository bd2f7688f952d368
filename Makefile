# The two set-up commands are `make demo` and `make test`; each installs what
# it needs on a fresh Debian machine (as root, or with sudo).

SHELL := /bin/bash
CARGO ?= cargo
# Debian packages: the PC/SC daemon, the vpcd reader driver for virtual
# cards, the PC/SC headers the pcsc crate builds against, and pcsc-tools for
# debugging by hand.
DEB_PACKAGES := pcscd vsmartcard-vpcd libpcsclite-dev pcsc-tools pkg-config openssl
# The browser test of the card agent's local UI drives Debian's Chromium
# through chromedriver; a Japanese font makes its screenshots readable.
# The IPsec test joins two network namespaces with strongSwan (userspace ESP:
# the kernel here has none) and filters with nftables. libfaketime moves the
# clocks of the TSA, hpki-certs and the renewal run for the tests that travel
# years into a record's retention. pyHanko (PyPI, scripts/install-python-tools.sh)
# is the second independent CAdES validator.
TEST_DEB_PACKAGES := chromium chromium-driver fonts-ipafont-gothic \
	faketime charon-systemd strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins strongswan-pki nftables iproute2
NEXTEST_PROFILE := $(if $(CI),ci,default)

.PHONY: demo test deps tools build lint audit bench-card bench-validation bench-gateway bench-confirms fuzz fuzz-api clean

demo: deps build
	./target/debug/hpki-demo

test: deps tools
	@scripts/install-deps.sh $(TEST_DEB_PACKAGES)
	@scripts/install-python-tools.sh
	@scripts/ensure-postgres.sh
	$(CARGO) fmt --all -- --check
	$(CARGO) build --workspace --bins
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --doc
	$(CARGO) nextest run --workspace --profile $(NEXTEST_PROFILE)

deps:
	@scripts/install-deps.sh $(DEB_PACKAGES)

# cargo-nextest runs each test in its own process, which the PC/SC tests
# need (libpcsclite talks to one pcscd per process).
tools:
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt

build:
	$(CARGO) build --workspace --bins

# cargo-deny: licences, banned or duplicate crates (duplicates warn), crate
# sources (deny.toml).
lint:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install cargo-deny --locked
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) deny check licenses bans sources

# Security advisories (RustSec). Needs the advisory database from GitHub,
# which this workplace's network does not reach; ignored advisories are
# explained in deny.toml.
audit:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install cargo-deny --locked
	$(CARGO) deny check advisories

# Card-layer latency through the real pcscd (release build).
bench-card: deps
	$(CARGO) build --release --bins -p virtual-card
	$(CARGO) bench -p hpki-e2e --bench card_latency

# HPKI path validation, cold and cached, next to raw RSA-2048 verify.
bench-validation: deps
	$(CARGO) bench -p hpki-e2e --bench validation

# The gateway against nginx with ssl_verify_client on (installs nginx, oha).
bench-gateway: deps
	bench/gateway-vs-nginx.sh

# Confirms/s on SQLite and PostgreSQL next to pgbench's TPC-B on the same
# server (starts PostgreSQL if it is down).
bench-confirms: deps
	bench/confirms-vs-pgbench.sh

# Fuzz the card-response parser, the certificate, hcRole and CRL decoders
# and the path builder, FUZZ_SECONDS each (cargo-fuzz needs nightly
# features; RUSTC_BOOTSTRAP enables them on the stable toolchain).
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd crates/hpki-card/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run card_responses -- -max_total_time=$(FUZZ_SECONDS)
	cd crates/hpki-profile/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run certificate -- -max_total_time=$(FUZZ_SECONDS)
	cd crates/hpki-profile/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run hc_role -- -max_total_time=$(FUZZ_SECONDS)
	cd crates/hpki-profile/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run crl -- -max_total_time=$(FUZZ_SECONDS)
	cd crates/hpki-profile/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run path_builder -- -max_total_time=$(FUZZ_SECONDS)

# Fuzz both listeners' request bodies over their real TLS listeners
# (tests/api_fuzz.rs), API_FUZZ_INPUTS each; the store on tmpfs so that the
# run measures the gateway, not the disk's fsync.
API_FUZZ_INPUTS ?= 1000000
fuzz-api: deps tools
	@scripts/ensure-postgres.sh
	$(CARGO) build --workspace --bins
	API_FUZZ_INPUTS=$(API_FUZZ_INPUTS) TMPDIR=/dev/shm $(CARGO) nextest run --profile fuzz -p hpki-e2e --test api_fuzz

clean:
	$(CARGO) clean
