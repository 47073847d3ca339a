namespace EioSharp.Tests.Core;

/// <summary>Execution contexts the frame tests compare against.</summary>
internal static class ExecutionContexts
{
    /// <summary>The execution context of code with no async local set: <c>ExecutionContext.Default</c>, what
    /// <see cref="ExecutionContext.Capture"/> returns on a new thread started with flow suppressed.</summary>
    public static ExecutionContext Default()
    {
        ExecutionContext? captured = null;
        Thread t;
        using (ExecutionContext.SuppressFlow())
        {
            t = new Thread(() => captured = ExecutionContext.Capture());
            t.Start();
        }

        t.Join();
        Assert.NotNull(captured);
        return captured!;
    }
}
