//! A plugin in Zig: CGI on stdin, stdout and the environment, nothing else.
//! Build: python -m ziglang build-exe hello.zig -target wasm32-wasi -O ReleaseSmall
const std = @import("std");

pub fn main(init: std.process.Init) !void {
    const env = init.environ_map;
    const length = std.fmt.parseInt(usize, env.get("CONTENT_LENGTH") orelse "0", 10) catch 0;

    var in_buf: [4096]u8 = undefined;
    var stdin = std.Io.File.stdin().readerStreaming(init.io, &in_buf);
    const body = try stdin.interface.readAllocShort(init.gpa, @min(length, 1 << 20));
    defer init.gpa.free(body);

    var out_buf: [4096]u8 = undefined;
    var stdout = std.Io.File.stdout().writerStreaming(init.io, &out_buf);
    const out = &stdout.interface;
    try out.print("Content-Type: text/plain\n\nHello from Zig!\n", .{});
    try out.print("method={s}\npath={s}\nquery={s}\nbody({d})={s}\n", .{
        env.get("REQUEST_METHOD") orelse "",
        env.get("PATH_INFO") orelse "",
        env.get("QUERY_STRING") orelse "",
        body.len,
        body,
    });
    try out.flush();
}
