using System.Text.RegularExpressions;
using EioSharp.TestKit;

namespace EioSharp.Kv.EndToEnd;

/// <summary>
/// The server runs on the backend the run asks for (issue 15): scripts/test.sh runs a subset of these end-to-end tests once
/// more per backend with <c>EIOSHARP_KV_BACKEND</c> set (see <see cref="KvServerProcess.RequestedBackend"/>); this test fails
/// if such a run silently used another backend (a fallback would defeat the point of the per-backend run).
/// </summary>
public sealed partial class BackendSelectionTests
{
    [GeneratedRegex(@"backend (\w+)")]
    private static partial Regex BackendInReadyLine();

    [Fact]
    public void The_ready_line_names_the_backend_the_run_asked_for()
    {
        using var server = KvServerProcess.Start();
        var m = BackendInReadyLine().Match(server.Log);
        Assert.True(m.Success, server.Log);
        string expected = KvServerProcess.RequestedBackend ?? m.Groups[1].Value;
        Assert.Contains(m.Groups[1].Value, new[] { "portable", "epoll", "uring" });
        Assert.Equal(expected, m.Groups[1].Value);
        using var client = new RespClient(server.Port);
        Assert.Equal("+PONG", client.Call("PING"));
    }
}
