using System.IO.Pipes;
using System.Runtime.Versioning;
using EioSharp.Backends.Native;

namespace EioSharp.Tests.Backends;

/// <summary>
/// The native pollers' readiness watches (what a child's pidfd uses on epoll and io_uring): reported once on the domain's
/// thread when the fd becomes readable, and handed back (<see cref="ReadyWatch.Abandoned"/>) when the domain ends first.
/// In the FdCount collection because it opens pipes.
/// </summary>
[Collection("FdCount")]
[SupportedOSPlatform("linux")]
public class ReadyWatchTests
{
    public static TheoryData<EioBackend> NativeBackends => new() { EioBackend.Epoll, EioBackend.Uring };

    private sealed class TestWatch(int fd) : ReadyWatch
    {
        public int ReadyCalls;
        public int AbandonedCalls;
        public int ReadyThread;
        public Resolver<bool>? OnReady;

        internal override int Fd => fd;

        internal override void Ready()
        {
            ReadyCalls++;
            ReadyThread = Environment.CurrentManagedThreadId;
            OnReady?.TryResolve(true);
        }

        internal override void Abandoned() => Interlocked.Increment(ref AbandonedCalls);
    }

    private static (AnonymousPipeServerStream Read, AnonymousPipeClientStream Write, int ReadFd) Pipe()
    {
        var server = new AnonymousPipeServerStream(PipeDirection.In);
        var client = new AnonymousPipeClientStream(PipeDirection.Out, server.ClientSafePipeHandle);
        return (server, client, (int)server.SafePipeHandle.DangerousGetHandle());
    }

    [SkippableTheory]
    [MemberData(nameof(NativeBackends))]
    public void ReadableFdIsReportedOnceOnTheDomainsThread(EioBackend backend)
    {
        var (r, w, fd) = Pipe();
        try
        {
            var watch = new TestWatch(fd);
            int domainThread = NetConformanceTests.RunOn(backend, async env =>
            {
                var watcher = Assert.IsAssignableFrom<IReadyWatcher>(Domain.Current!.Poller);
                var (p, resolver) = Promise.Create<bool>();
                watch.OnReady = resolver;
                Assert.True(watcher.TryWatch(watch));
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(50));
                Assert.Equal(0, watch.ReadyCalls); // nothing written yet

                w.WriteByte(1);
                w.Flush();
                await p.AwaitAsync();
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(50));
                return Environment.CurrentManagedThreadId;
            });
            Assert.Equal(1, watch.ReadyCalls); // one-shot: the byte is still unread, no second report
            Assert.Equal(domainThread, watch.ReadyThread);
            Assert.Equal(0, watch.AbandonedCalls);
        }
        finally
        {
            w.Dispose();
            r.Dispose();
        }
    }

    [SkippableTheory]
    [MemberData(nameof(NativeBackends))]
    public void WatchLeftWhenTheDomainEndsIsAbandonedOnce(EioBackend backend)
    {
        var (r, w, fd) = Pipe();
        try
        {
            var watch = new TestWatch(fd);
            NetConformanceTests.RunOn(backend, async env =>
            {
                Assert.True(((IReadyWatcher)Domain.Current!.Poller).TryWatch(watch));
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(10));
                return 0;
            });
            Assert.Equal(0, watch.ReadyCalls);
            Assert.Equal(1, Volatile.Read(ref watch.AbandonedCalls));
        }
        finally
        {
            w.Dispose();
            r.Dispose();
        }
    }
}
