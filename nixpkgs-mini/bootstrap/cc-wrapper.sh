#!@shell@
# @name@: zig @mode@, always for static musl. A link (no -c, -S, -E, -M or
# -MM) is stripped (-s) unless $dontStrip is set: zig's objcopy cannot
# strip ELF files afterwards, so binaries are stripped as they are linked.
link=1
for a in "$@"; do
  case "$a" in -c|-S|-E|-M|-MM) link= ;; esac
done
if [ -n "$link" ] && [ -z "${dontStrip:-}" ]; then set -- -s "$@"; fi
exec @zig@ @mode@ -target x86_64-linux-musl "$@"
