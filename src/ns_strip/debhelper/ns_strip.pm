#!/usr/bin/perl
# debhelper sequence add-on for dh_ns_strip (ns-strip), enabled by
# "Build-Depends: dh-sequence-ns-strip" or "dh $@ --with ns-strip".

use strict;
use warnings;
use Debian::Debhelper::Dh_Lib;

# Right before dh_installdeb, which turns the autoscripts into the maintainer scripts. That is
# after dh_python3 (and every other helper that moves or adds Python files) whatever order the
# add-ons are loaded in: add-ons named in Build-Depends load sorted by name, "ns-strip" before
# "python3", and insert_after("dh_python3", ...) run before dh_python3 is in the sequence
# would find nothing and silently leave dh_ns_strip out.
insert_before('dh_installdeb', 'dh_ns_strip');

1;
