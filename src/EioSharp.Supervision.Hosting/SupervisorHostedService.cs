using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EioSharp.Supervision.Hosting;

/// <summary>Runs a supervision tree as a <see cref="IHostedService"/>: on its own EioSharp main domain (a dedicated thread), started with the host and stopped with it.</summary>
/// <remarks>
/// Erlang: an OTP application whose top supervisor the host starts and stops.
/// <para><b>Start</b>: <see cref="StartAsync(CancellationToken)"/> starts a thread that runs <see cref="EioMain.Run(Func{Stdenv, Task})"/> with the
/// top supervisor, and completes once every initial child is ready; if the tree fails to start it throws the
/// <see cref="SupervisorStartException"/>, so the host does not start.</para>
/// <para><b>Stop</b>: <see cref="StopAsync(CancellationToken)"/> asks the supervisor to stop (children in reverse start order, each within its
/// shutdown timeout) and waits for the domain to finish, or for the host's shutdown token. Children abandoned by the supervisor are dropped
/// when the domain's thread ends.</para>
/// <para><b>Errors</b>: if the tree fails after it started (restart intensity exceeded at the top), the failure is kept in
/// <see cref="Completion"/> and, when an <see cref="IHostApplicationLifetime"/> was given, the application is stopped (the top of the tree
/// escalates to the host).</para>
/// </remarks>
public sealed class SupervisorHostedService : IHostedService
{
    private readonly Func<Stdenv, SupervisorSpec> _buildSpec;
    private readonly IHostApplicationLifetime? _lifetime;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Supervisor? _supervisor;
    private Thread? _thread;

    /// <summary>Creates the service.</summary>
    /// <param name="buildSpec">Builds the top supervisor's specification on the new domain, from its capabilities (clocks, network, files).</param>
    /// <param name="lifetime">The host's lifetime, stopped if the tree fails after starting; null to only record the failure.</param>
    /// <exception cref="ArgumentNullException"><paramref name="buildSpec"/> is null.</exception>
    public SupervisorHostedService(Func<Stdenv, SupervisorSpec> buildSpec, IHostApplicationLifetime? lifetime = null)
    {
        ArgumentNullException.ThrowIfNull(buildSpec);
        _buildSpec = buildSpec;
        _lifetime = lifetime;
    }

    /// <summary>The running top supervisor, once started (null before).</summary>
    public Supervisor? Supervisor => Volatile.Read(ref _supervisor);

    /// <summary>Completes when the tree's domain has finished: successfully after a stop, or with the tree's failure.</summary>
    public Task Completion => _done.Task;

    /// <summary>Starts the tree on a new thread and waits until all initial children are ready.</summary>
    /// <param name="cancellationToken">Gives up waiting (the tree is then asked to stop).</param>
    /// <returns>A task that completes once the tree is running.</returns>
    /// <exception cref="SupervisorStartException">A child failed to start.</exception>
    /// <exception cref="InvalidOperationException">The service was already started.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired first.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _thread, new Thread(Run) { IsBackground = true, Name = "eiosharp-supervisor" }, null) is not null)
        {
            throw new InvalidOperationException("The service was already started.");
        }

        _thread.Start();
        using var reg = cancellationToken.Register(() => _ready.TrySetCanceled(cancellationToken));
        try
        {
            await _ready.Task;
        }
        catch (OperationCanceledException)
        {
            Supervisor?.RequestStop();
            throw;
        }
    }

    /// <summary>Stops the tree and waits for its domain to finish, or for <paramref name="cancellationToken"/>.</summary>
    /// <param name="cancellationToken">The host's shutdown deadline: when it fires this returns, leaving the domain to finish on its own.</param>
    /// <returns>A task that completes when the tree has stopped or the deadline passed.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_thread is null)
        {
            return;
        }

        Supervisor?.RequestStop();
        var deadline = Task.Delay(Timeout.Infinite, cancellationToken);
        await Task.WhenAny(_done.Task, deadline).ConfigureAwait(false);
    }

    private void Run()
    {
        try
        {
            EioMain.Run(env => EioSharp.Supervision.Supervisor.RunAsync(_buildSpec(env), env.MonoClock, sup =>
            {
                Volatile.Write(ref _supervisor, sup);
                _ready.TrySetResult();
            }));
            _ready.TrySetException(new InvalidOperationException("The supervisor stopped before it was ready."));
            _done.TrySetResult();
        }
        catch (Exception ex)
        {
            bool started = !_ready.TrySetException(ex);
            _done.TrySetException(ex);
            if (started)
            {
                _lifetime?.StopApplication();
            }
        }
    }
}

/// <summary>Registers supervision trees with a host.</summary>
public static class SupervisorServiceCollectionExtensions
{
    /// <summary>Adds a hosted service that runs the supervision tree built by <paramref name="buildSpec"/> (see <see cref="SupervisorHostedService"/>).</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="buildSpec">Builds the top supervisor's specification from the domain's capabilities.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IServiceCollection AddEioSupervisor(this IServiceCollection services, Func<Stdenv, SupervisorSpec> buildSpec)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(buildSpec);
        services.AddSingleton<IHostedService>(sp => new SupervisorHostedService(buildSpec, sp.GetService<IHostApplicationLifetime>()));
        return services;
    }
}
