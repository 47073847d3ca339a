using EioSharp.Backends;

namespace EioSharp.Tests.Backends;

/// <summary>Choosing the backend by value (issue 15): EioOptions.Backend, the EIOSHARP_BACKEND override, fallback.</summary>
public class BackendChoiceTests
{
    [Theory]
    [InlineData("auto", EioBackend.Auto)]
    [InlineData("Portable", EioBackend.Portable)]
    [InlineData("EPOLL", EioBackend.Epoll)]
    [InlineData("uring", EioBackend.Uring)]
    [InlineData("io_uring", EioBackend.Uring)]
    public void ParseBackendAcceptsTheNamesInAnyCase(string name, EioBackend expected) =>
        Assert.Equal(expected, EioOptions.ParseBackend(name));

    [Theory]
    [InlineData("")]
    [InlineData("kqueue")]
    [InlineData("epol")]
    public void ParseBackendRejectsAnUnknownName(string name) =>
        Assert.Throws<ArgumentException>(() => EioOptions.ParseBackend(name));

    [Fact]
    public void WithNothingSetTheLibraryDefaultIsPortable() =>
        Assert.Equal(EioBackend.Portable, EioMain.ChooseBackend(null, null));

    [Fact]
    public void TheEnvironmentOverridesAnUnspecifiedOrAutoBackend()
    {
        Assert.Equal(EioBackend.Epoll, EioMain.ChooseBackend(null, "epoll"));
        Assert.Equal(EioBackend.Portable, EioMain.ChooseBackend(EioBackend.Auto, "portable"));
        Assert.Equal(EioBackend.Auto, EioMain.ChooseBackend(EioBackend.Auto, null));
        Assert.Equal(EioBackend.Auto, EioMain.ChooseBackend(EioBackend.Auto, " "));
    }

    [Fact]
    public void AnExplicitBackendWinsOverTheEnvironment()
    {
        Assert.Equal(EioBackend.Portable, EioMain.ChooseBackend(EioBackend.Portable, "uring"));
        Assert.Equal(EioBackend.Epoll, EioMain.ChooseBackend(EioBackend.Epoll, "nonsense")); // not consulted, so not an error
    }

    [Fact]
    public void AnUnknownNameInTheEnvironmentIsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => EioMain.ChooseBackend(null, "kqueue"));
        Assert.Equal("EIOSHARP_BACKEND", e.ParamName);
        Assert.Contains("kqueue", e.Message);
    }

    [Fact]
    public void AutoPicksTheBestAvailableBackend()
    {
        var auto = BackendChoice.Resolve(EioBackend.Auto, EioBackendOptions.Default, noteFallback: false);
        var expected = UringBackend.TryCreate(EioBackendOptions.Default, out _) is not null ? EioBackend.Uring
            : EpollBackend.TryCreate(EioBackendOptions.Default, out _) is not null ? EioBackend.Epoll
            : EioBackend.Portable;
        Assert.Equal(expected, auto.Kind);
        Assert.NotEqual(EioBackend.Auto, auto.Kind);
    }

    [Fact]
    public void RunWithOptionsUsesTheChosenBackend()
    {
        string name = EioMain.Run(env => Task.FromResult(env.Backend), new EioOptions { Backend = EioBackend.Portable });
        Assert.Equal("portable", name);
        string epoll = EioMain.Run(env => Task.FromResult(env.Backend), new EioOptions { Backend = EioBackend.Epoll });
        Assert.Equal(EpollBackend.TryCreate(EioBackendOptions.Default, out _) is not null ? "epoll" : "portable", epoll);
    }
}
