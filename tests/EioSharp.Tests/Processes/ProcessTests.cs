using EioSharp.Fs;
using EioSharp.IO;
using EioSharp.Processes;

namespace EioSharp.Tests.Processes;

/// <summary>Eio.Process on the portable backend with real binaries (/bin/sh, cat, sleep); <see cref="ProcessEpollTests"/> and
/// <see cref="ProcessUringTests"/> run them on epoll and io_uring. One collection (run one class at a time): the no-pidfd test
/// sets a process-wide switch (<see cref="ChildReaper.ForceFallback"/>) that the others must not see.</summary>
[Collection("Processes")]
public class ProcessTests
{
    /// <summary>The backend the tests run on.</summary>
    protected virtual EioBackend Backend => EioBackend.Portable;

    private T RunEio<T>(Func<Stdenv, Task<T>> main) => EioMain.Run(main, new EioOptions { Backend = Backend });

    private void RunEio(Func<Stdenv, Task> main) => EioMain.Run(main, new EioOptions { Backend = Backend });

    /// <summary>True while /proc shows <paramref name="pid"/> (a zombie included).</summary>
    private static bool ProcExists(int pid) => Directory.Exists($"/proc/{pid}");

    private static string? ProcState(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
        }
        catch (IOException)
        {
            return null;
        }
    }

    [Fact]
    public void RunSucceedsOnExitZero()
    {
        RunEio(env => env.ProcessManager.RunAsync(["true"]));
    }

    [Fact]
    public void RunRaisesChildErrorWithStatusAndArguments()
    {
        var ex = RunEio(async env => await Assert.ThrowsAsync<ProcessExitException>(
            () => env.ProcessManager.RunAsync(["/bin/sh", "-c", "exit 3"])));
        Assert.Equal(ProcessStatus.Exited(3), ex.Status);
        Assert.Equal(["/bin/sh", "-c", "exit 3"], ex.Arguments);
        Assert.Equal("Child_error Exited (code 3), running command: /bin/sh -c \"exit 3\"", ex.Message);
    }

    [Fact]
    public void ParseOutputReadsStdout()
    {
        var line = RunEio(env => env.ProcessManager.ParseOutputAsync(r => r.ReadLineAsync(), ["echo", "hello"]));
        Assert.Equal("hello", line);
        var all = RunEio(env => env.ProcessManager.ParseOutputAsync(r => r.TakeAllStringAsync(), ["/bin/sh", "-c", "printf 'a\\nb\\n'"]));
        Assert.Equal("a\nb\n", all);
    }

    [Fact]
    public void ParseOutputThatLeavesOutputUnreadFails()
    {
        var ex = RunEio(async env => await Assert.ThrowsAsync<FormatException>(
            () => env.ProcessManager.ParseOutputAsync(r => r.ReadLineAsync(), ["/bin/sh", "-c", "echo a; echo b"])));
        Assert.Contains("running command: /bin/sh -c \"echo a; echo b\"", ex.Message);
    }

    [Fact]
    public void StdinAndStdoutFlowsAreCopiedThroughPipes()
    {
        var output = RunEio(async env =>
        {
            var sink = new BufferSink();
            await env.ProcessManager.RunAsync(["cat"], stdin: new StringSource("one\ntwo\n"), stdout: sink);
            return sink.ToString();
        });
        Assert.Equal("one\ntwo\n", output);
    }

    [Fact]
    public void StderrFlowReceivesTheChildsErrorOutput()
    {
        var (stdout, stderr) = RunEio(async env =>
        {
            var o = new BufferSink();
            var e = new BufferSink();
            await env.ProcessManager.RunAsync(["/bin/sh", "-c", "echo out; echo err >&2"], stdout: o, stderr: e);
            return (o.ToString(), e.ToString());
        });
        Assert.Equal("out\n", stdout);
        Assert.Equal("err\n", stderr);
    }

    [Fact]
    public void ChildGetsDefaultSigpipeNotDotNetsIgnoredOne()
    {
        // .NET ignores SIGPIPE; posix_spawn resets it, so `yes` dies quietly when `head` exits instead of reporting EPIPE.
        var stderr = RunEio(async env =>
        {
            var e = new BufferSink();
            await env.ProcessManager.RunAsync(["/bin/sh", "-c", "yes | head -n 1 >/dev/null"], stderr: e);
            return e.ToString();
        });
        Assert.Equal("", stderr);
    }

    [Fact]
    public void PipeConnectsTwoChildrenWithoutCopyingFibers()
    {
        var output = RunEio(async env =>
        {
            var mgr = env.ProcessManager;
            var sink = new BufferSink();
            await Switch.RunAsync(async sw =>
            {
                var (r, w) = mgr.Pipe(sw);
                var producer = mgr.Spawn(sw, ["/bin/sh", "-c", "echo piped; echo twice"], stdout: w);
                w.Close();
                var consumer = mgr.Spawn(sw, ["/bin/sh", "-c", "tr a-z A-Z"], stdin: r, stdout: sink);
                r.Close();
                await producer.AwaitSuccessAsync();
                await consumer.AwaitSuccessAsync();
            });
            return sink.ToString();
        });
        Assert.Equal("PIPED\nTWICE\n", output);
    }

    [Fact]
    public void CwdIsADirectoryCapabilityAndEnvironmentIsPassed()
    {
        string dir = Directory.CreateTempSubdirectory("eio-proc-").FullName;
        try
        {
            var (pwd, foo) = RunEio(async env =>
            {
                var mgr = env.ProcessManager;
                string p = await mgr.ParseOutputAsync(r => r.ReadLineAsync(), ["pwd"], cwd: env.Fs / dir);
                string f = await mgr.ParseOutputAsync(r => r.ReadLineAsync(), ["/bin/sh", "-c", "echo $FOO"], environment: ["FOO=bar"]);
                return (p, f);
            });
            Assert.Equal(dir, pwd);
            Assert.Equal("bar", foo);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void CwdCannotLeaveAConfinedDirectory()
    {
        RunEio(async env =>
        {
            await Assert.ThrowsAsync<FsPermissionException>(async () =>
            {
                await Switch.RunAsync(async sw =>
                {
                    env.ProcessManager.Spawn(sw, ["pwd"], cwd: env.Cwd / "..");
                    await Task.CompletedTask;
                });
            });
        });
    }

    [Fact]
    public void MissingExecutableIsExecutableNotFound()
    {
        var ex = RunEio(async env => await Assert.ThrowsAsync<ExecutableNotFoundException>(
            () => env.ProcessManager.RunAsync(["eio-no-such-program-xyz", "a b"])));
        Assert.Equal("eio-no-such-program-xyz", ex.Executable);
        Assert.Equal("Executable_not_found \"eio-no-such-program-xyz\", running command: eio-no-such-program-xyz \"a b\"", ex.Message);
        RunEio(async env => await Assert.ThrowsAsync<ExecutableNotFoundException>(
            () => env.ProcessManager.RunAsync(["x"], executable: "/nonexistent/prog")));
    }

    [Fact]
    public void ExecutableOverridesArgvZero()
    {
        var name = RunEio(env => env.ProcessManager.ParseOutputAsync(r => r.ReadLineAsync(), ["my-name", "-c", "echo $0"], executable: "/bin/sh"));
        Assert.Equal("my-name", name);
    }

    [Fact]
    public void SignalKillsAndAwaitReportsTheSignalThenSignalIsANoOp()
    {
        RunEio(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var child = env.ProcessManager.Spawn(sw, ["sleep", "100"]);
                Assert.True(child.Pid > 0);
                child.Signal(UnixSignal.Kill);
                Assert.Equal(ProcessStatus.Signaled(UnixSignal.Kill), await child.AwaitAsync());
                Assert.Equal("Exited (signal SIGKILL)", (await child.AwaitAsync()).ToString());
                Assert.True(child.HasExited);
                child.Signal(UnixSignal.Kill); // already exited: nothing happens
                var ex = await Assert.ThrowsAsync<ProcessExitException>(child.AwaitSuccessAsync);
                Assert.Equal(ProcessStatus.Signaled(9), ex.Status);
            });
        });
    }

    [Fact]
    public void SwitchFinishingTerminatesAndReapsARunningChild()
    {
        var (pid, status) = RunEio(async env =>
        {
            ChildProcess? child = null;
            await Switch.RunAsync(async sw =>
            {
                child = env.ProcessManager.Spawn(sw, ["sleep", "100"]);
                Assert.True(ProcExists(child.Pid));
                await Task.CompletedTask;
            });
            Assert.True(child!.HasExited);
            return (child.Pid, await child.AwaitAsync());
        });
        Assert.Equal(ProcessStatus.Signaled(UnixSignal.Terminate), status);
        Assert.False(ProcExists(pid), $"/proc/{pid} still exists (state {ProcState(pid)})");
    }

    [Fact]
    public void ChildIgnoringSigtermGetsSigkillAfterTheGracePeriod()
    {
        var (pid, status) = RunEio(async env =>
        {
            ChildProcess? child = null;
            await Switch.RunAsync(async sw =>
            {
                // An ignored signal stays ignored across exec: sleep ignores SIGTERM.
                var (r, w) = env.ProcessManager.Pipe(sw);
                child = env.ProcessManager.Spawn(
                    sw, ["/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 100"], stdout: w, killGracePeriod: TimeSpan.FromMilliseconds(200));
                w.Close();
                Assert.Equal("ready", await new BufferedReader(r, 100).ReadLineAsync()); // the trap is set
            });
            return (child!.Pid, await child.AwaitAsync());
        });
        Assert.Equal(ProcessStatus.Signaled(UnixSignal.Kill), status);
        Assert.False(ProcExists(pid));
    }

    [Fact]
    public void FailingSwitchKillsItsChildAtOnceWithZeroGrace()
    {
        int pid = 0;
        var ex = Assert.Throws<InvalidOperationException>(() => RunEio(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                pid = env.ProcessManager.Spawn(sw, ["sleep", "100"], killGracePeriod: TimeSpan.Zero).Pid;
                await Task.CompletedTask;
                throw new InvalidOperationException("boom");
            });
        }));
        Assert.Equal("boom", ex.Message);
        Assert.False(ProcExists(pid));
    }

    [Fact]
    public void CancellingTheWaitingFiberLeavesNoZombie()
    {
        int pid = RunEio(async env =>
        {
            int p = 0;
            await Switch.RunAsync(async sw =>
            {
                var child = env.ProcessManager.Spawn(sw, ["sleep", "0.3"]);
                p = child.Pid;

                // The waiting fiber is cancelled (the other branch wins at once); nobody awaits the child afterwards.
                int winner = await Fiber.FirstAsync(async () => { await child.AwaitAsync(); return 1; }, () => Task.FromResult(2));
                Assert.Equal(2, winner);

                // The reaper still reaps it when it exits: /proc/pid goes away without any await, and the child learns it
                // (the exit reaches the child's domain just after the reap: ci40 once checked in between).
                for (int i = 0; i < 1000 && (ProcExists(p) || !child.HasExited); i++)
                {
                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(20));
                }

                Assert.True(child.HasExited);
            });
            return p;
        });
        Assert.False(ProcExists(pid), $"state {ProcState(pid)}");
    }

    [Fact]
    public void NativeBackendsWatchTheChildOnTheSpawningDomainsPoller()
    {
        // epoll: the pidfd in the domain's epoll set; io_uring: a POLL_ADD on the ring; portable: the reaper thread.
        var (watched, pid, status) = RunEio(async env =>
        {
            ChildProcess? child = null;
            ProcessStatus st = default;
            await Switch.RunAsync(async sw =>
            {
                child = env.ProcessManager.Spawn(sw, ["/bin/sh", "-c", "exit 5"]);
                st = await child.AwaitAsync();
            });
            return (child!.WatchedByDomain, child.Pid, st);
        });
        Assert.Equal(Backend != EioBackend.Portable, watched);
        Assert.Equal(ProcessStatus.Exited(5), status);
        Assert.False(ProcExists(pid), $"/proc/{pid} still exists (state {ProcState(pid)})");
    }

    [Fact]
    public void ChildExitingWhileTheDomainIsBusyIsStillReaped()
    {
        // A domain that never goes idle (a fiber yielding in a loop) still sees the exit: the native pollers poll once per
        // round while busy, and the pidfd watch counts as a registration.
        var status = RunEio(async env =>
        {
            var (p, r) = Promise.Create<ProcessStatus>();
            await Switch.RunAsync(async sw =>
            {
                var child = env.ProcessManager.Spawn(sw, ["true"]);
                Fiber.Fork(sw, async () => r.TryResolve(await child.AwaitAsync()));
                while (!p.IsResolved)
                {
                    await Fiber.YieldAsync();
                }
            });
            return await p.AwaitAsync();
        });
        Assert.Equal(ProcessStatus.Exited(0), status);
    }

    [Fact]
    public void FinishedSwitchRefusesSpawn()
    {
        RunEio(async env =>
        {
            Switch? done = null;
            await Switch.RunAsync(sw => { done = sw; return Task.CompletedTask; });
            Assert.Throws<InvalidOperationException>(() => env.ProcessManager.Spawn(done!, ["true"]));
        });
    }

    [Fact]
    public void AThousandConcurrentShortChildren()
    {
        var statuses = RunEio(async env =>
        {
            var mgr = env.ProcessManager;
            var results = new ProcessStatus[1000];
            await Switch.RunAsync(async sw =>
            {
                var children = new ChildProcess[1000];
                for (int i = 0; i < children.Length; i++)
                {
                    children[i] = mgr.Spawn(sw, ["/bin/sh", "-c", "exit $0", (i % 7).ToString()]);
                }

                await Fiber.IterAsync(Enumerable.Range(0, 1000).ToArray(), async i => results[i] = await children[i].AwaitAsync());
            });
            return results;
        });
        for (int i = 0; i < statuses.Length; i++)
        {
            Assert.Equal(ProcessStatus.Exited(i % 7), statuses[i]);
        }
    }

    [Fact]
    public void WithoutPidfdTheReaperPollsAndSignalsUseThePid()
    {
        ChildReaper.ForceFallback = true;
        try
        {
            RunEio(async env =>
            {
                await env.ProcessManager.RunAsync(["true"]);
                await Switch.RunAsync(async sw =>
                {
                    var child = env.ProcessManager.Spawn(sw, ["sleep", "100"]);
                    Assert.Equal(-1, child.PidFd);
                    child.Signal(UnixSignal.Terminate);
                    Assert.Equal(ProcessStatus.Signaled(UnixSignal.Terminate), await child.AwaitAsync());
                });
            });
        }
        finally
        {
            ChildReaper.ForceFallback = false;
        }
    }

    [Fact]
    public void MockBackendHasNoProcessManager()
    {
        EioSharp.Mock.MockMain.Run(env =>
        {
            Assert.Throws<NotSupportedException>(() => env.ProcessManager);
            return Task.CompletedTask;
        });
    }
}

/// <summary><see cref="ProcessTests"/> on the epoll backend.</summary>
[Collection("Processes")]
public class ProcessEpollTests : ProcessTests
{
    /// <inheritdoc/>
    protected override EioBackend Backend => EioBackend.Epoll;
}

/// <summary><see cref="ProcessTests"/> on the io_uring backend.</summary>
[Collection("Processes")]
public class ProcessUringTests : ProcessTests
{
    /// <inheritdoc/>
    protected override EioBackend Backend => EioBackend.Uring;
}
