#!/usr/bin/env alua
await x
