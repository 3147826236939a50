# The two commands of the README: `make book` builds the book into _build/html,
# `make test` runs every test. Both set up .venv themselves on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Progress bars belong to readers at a live kernel, not to built pages or test logs.
export SUPERSIM_PROGRESS := 0

# The browser tests drive Chromium (Debian's, or one Playwright installed); without one they
# are skipped, except in CI. `make browser` installs Debian's with apt-get (root or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test venv browser clean

venv: $(VENV)/.installed

# constraints.txt pins torch to the build this machine has (pip must never resolve it freely).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $@

book: venv
	$(BIN)/jupyter-book build . -W --keep-going

browser:
	@test -x /usr/bin/chromium || { echo "Installing Chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf _build test-artifacts
