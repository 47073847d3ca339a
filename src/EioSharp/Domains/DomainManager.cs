namespace EioSharp.Domains;

/// <summary>Starts domains: OS threads, each with its own scheduler, for running fibers in parallel.</summary>
/// <remarks>Eio: <c>Eio.Domain_manager</c> (<c>env#domain_mgr</c>).</remarks>
public abstract class DomainManager
{
    private protected DomainManager()
    {
    }

    /// <summary>Runs <paramref name="body"/> as the main fiber of a new domain and returns its result to the caller's domain.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The code to run in the new domain. It must only use values that are safe across domains.</param>
    /// <param name="name">A name for the domain (traces, watchdog).</param>
    /// <returns>The value <paramref name="body"/> returned; the caller resumes on its own domain.</returns>
    /// <exception cref="Exception">Whatever <paramref name="body"/> threw, rethrown in the caller.</exception>
    /// <exception cref="CancelledException">The caller was cancelled; the cancellation is forwarded into the new domain (S17)
    /// and this returns only after <paramref name="body"/> has finished.</exception>
    /// <remarks>Eio: <c>Domain_manager.run</c>. The domain ends when <paramref name="body"/> returns.</remarks>
    public abstract Task<T> RunAsync<T>(Func<Task<T>> body, string? name = null);

    /// <summary>Runs <paramref name="body"/> as the main fiber of a new domain.</summary>
    /// <param name="body">The code to run in the new domain.</param>
    /// <param name="name">A name for the domain.</param>
    /// <returns>A task that completes when <paramref name="body"/> has finished.</returns>
    /// <remarks>Eio: <c>Domain_manager.run</c>.</remarks>
    public Task RunAsync(Func<Task> body, string? name = null) =>
        RunAsync<bool>(async () => { await body(); return true; }, name);
}

/// <summary>The real domain manager: one dedicated thread per domain.</summary>
internal sealed class ThreadDomainManager : DomainManager
{
    public override async Task<T> RunAsync<T>(Func<Task<T>> body, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        var (promise, resolver) = Promise.Create<T>();
        var domain = Domain.CreateReal(name, pollerFactory: Domain.Current?.PollerFactory);
        CancelContext? remoteRoot = null;
        var thread = new Thread(() =>
        {
            try
            {
                domain.RunMain(async root =>
                {
                    remoteRoot = root;
                    try
                    {
                        resolver.Resolve(await body());
                    }
                    catch (Exception ex)
                    {
                        resolver.ResolveError(ex);
                    }

                    return true;
                });
            }
            catch (Exception ex)
            {
                resolver.TryResolveError(ex);
            }
        })
        {
            IsBackground = true,
            Name = "eio " + domain.Name,
        };
        thread.Start();
        try
        {
            return await promise.AwaitAsync();
        }
        catch (CancelledException) when (!promise.IsResolved)
        {
            var reason = frame.Cancel.Reason ?? new OperationCanceledException();
            domain.Enqueue(_ => remoteRoot?.Cancel(reason), null);
            await Cancel.ProtectAsync(async () =>
            {
                try
                {
                    await promise.AwaitAsync();
                }
                catch (Exception)
                {
                    // The domain's own outcome is superseded by the caller's cancellation.
                }
            });
            throw;
        }
    }
}
