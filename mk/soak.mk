# soak.mk — an echo server under constant load for minutes (scripts/soak.lua): RSS and
# open descriptors every few seconds, exit 1 if either grew. Never part of make test.
#   make soak [SOAK_MINUTES=10] [SOAK_EVERY=5]

SOAK_MINUTES ?= 10
SOAK_EVERY   ?= 5

.PHONY: soak
soak: all
	$(ALUA) scripts/soak.lua $(SOAK_MINUTES) $(SOAK_EVERY)
