namespace EioSharp.Jobs.Tests;

public class CommandLineTests
{
    [Fact]
    public void Defaults_and_every_flag()
    {
        JobsOptions defaults = JobsCommandLine.Parse([], out bool help);
        Assert.False(help);
        Assert.Equal(new JobsOptions(), defaults);
        JobsOptions o = JobsCommandLine.Parse(
            ["--port", "9000", "--bind=::1", "--workers", "3", "--queue", "5", "--mode", "inline", "--inline-max", "30", "--max-connections", "7"],
            out _);
        Assert.Equal(new JobsOptions { Port = 9000, Bind = "::1", Workers = 3, Queue = 5, Mode = JobsMode.Inline, InlineMax = 30, MaxConnections = 7 }, o);
    }

    [Fact]
    public void Backend_defaults_to_auto_and_takes_each_name()
    {
        Assert.Equal(EioBackend.Auto, JobsCommandLine.Parse([], out _).Backend);
        Assert.Equal(EioBackend.Portable, JobsCommandLine.Parse(["--backend", "portable"], out _).Backend);
        Assert.Equal(EioBackend.Epoll, JobsCommandLine.Parse(["--backend", "epoll"], out _).Backend);
        Assert.Equal(EioBackend.Uring, JobsCommandLine.Parse(["--backend", "uring"], out _).Backend);
        Assert.Contains("--backend", Assert.Throws<ArgumentException>(() => JobsCommandLine.Parse(["--backend", "kqueue"], out _)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Help_is_recognised(string flag)
    {
        _ = JobsCommandLine.Parse([flag], out bool help);
        Assert.True(help);
        Assert.Contains("--mode <pool|inline|threadpool>", JobsCommandLine.Usage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--port", "x" }, "--port")]
    [InlineData(new[] { "--port" }, "--port")]
    [InlineData(new[] { "--mode", "fast" }, "--mode")]
    [InlineData(new[] { "--inline-max", "93" }, "--inline-max")]
    [InlineData(new[] { "--nope" }, "--nope")]
    public void Errors_name_the_flag(string[] args, string named)
    {
        var e = Assert.Throws<ArgumentException>(() => JobsCommandLine.Parse(args, out _));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Response_file()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file, ["--port 9001", "--mode threadpool"]);
            JobsOptions o = JobsCommandLine.Parse(["@" + file], out _);
            Assert.Equal(9001, o.Port);
            Assert.Equal(JobsMode.ThreadPool, o.Mode);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
