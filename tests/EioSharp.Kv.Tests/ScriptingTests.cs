using System.Text;
using EioSharp.Kv;
using Xunit;

namespace EioSharp.Kv.Tests;

public class ScriptingTests
{
    private static string Eval(StoreHarness h, string script, params string[] keysAndArgs) => h.Run(["EVAL", script, .. keysAndArgs]);

    [Fact]
    public void Smoke()
    {
        var h = new StoreHarness();
        Assert.Equal(":2\r\n", Eval(h, "return 1+1", "0"));
        Assert.Equal("$5\r\nLua 5\r\n", Eval(h, "return string.sub(_VERSION, 1, 5)", "0"));
    }
}
