# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hpa_tier_global_optspecs
    string join \n c/config= dry-run o/output= v/verbose h/help V/version
end

function __fish_hpa_tier_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hpa_tier_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hpa_tier_using_subcommand
    set -l cmd (__fish_hpa_tier_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -s c -l config -d 'Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -s o -l output -d 'Output format on stdout; logs always go to stderr' -r -f -a "table\t'For people'
json\t'One JSON document, for CI and scripts'"
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -l dry-run -d 'Read everything, change nothing: no HPA patch, no record, no notification. Prints the plan'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace)'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -s V -l version -d 'Print version'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -f -a "check" -d 'One control pass: read users, pick the tier, check prerequisites, patch the HPAs, record, notify. What cron runs'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -f -a "upgrade" -d 'Move to the tier of exactly CAPACITY (e.g. before a known event)'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -f -a "status" -d 'Where things stand: current tier, each HPA, prerequisites, hold, schedule windows, the forecast, last runs'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -f -a "tiers" -d 'The validated tier table, inherited prerequisites filled in'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -f -a "schedules" -d 'The scheduled windows of the next days, from the config alone (no network)'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -f -a "simulate" -d 'Replay users through the policy offline: the tiers `check` would have chosen, scored against the oracle and the static peak tier'
complete -c hpa-tier -n "__fish_hpa_tier_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand check" -l users -d 'Use N online users instead of the metric source (what-if, drills, CI). At most 2147483647 (2^31-1), like any source\'s reading' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand check" -s c -l config -d 'Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand check" -s o -l output -d 'Output format on stdout; logs always go to stderr' -r -f -a "table\t'For people'
json\t'One JSON document, for CI and scripts'"
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand check" -l dry-run -d 'Read everything, change nothing: no HPA patch, no record, no notification. Prints the plan'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand check" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand upgrade" -l hold -d 'Keep later `check` runs from stepping below this tier for this long (e.g. 90m, 2h, 1d; at most 30 days)' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand upgrade" -s c -l config -d 'Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand upgrade" -s o -l output -d 'Output format on stdout; logs always go to stderr' -r -f -a "table\t'For people'
json\t'One JSON document, for CI and scripts'"
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand upgrade" -l force -d 'Skip the prerequisite check. The database or cache may then be too small for the pods you add'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand upgrade" -l dry-run -d 'Read everything, change nothing: no HPA patch, no record, no notification. Prints the plan'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand upgrade" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand upgrade" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand status" -s c -l config -d 'Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand status" -s o -l output -d 'Output format on stdout; logs always go to stderr' -r -f -a "table\t'For people'
json\t'One JSON document, for CI and scripts'"
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand status" -l dry-run -d 'Read everything, change nothing: no HPA patch, no record, no notification. Prints the plan'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand status" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand tiers" -s c -l config -d 'Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand tiers" -s o -l output -d 'Output format on stdout; logs always go to stderr' -r -f -a "table\t'For people'
json\t'One JSON document, for CI and scripts'"
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand tiers" -l dry-run -d 'Read everything, change nothing: no HPA patch, no record, no notification. Prints the plan'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand tiers" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand tiers" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand schedules" -l days -d 'How many days ahead' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand schedules" -s c -l config -d 'Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand schedules" -s o -l output -d 'Output format on stdout; logs always go to stderr' -r -f -a "table\t'For people'
json\t'One JSON document, for CI and scripts'"
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand schedules" -l dry-run -d 'Read everything, change nothing: no HPA patch, no record, no notification. Prints the plan'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand schedules" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand schedules" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l since -d 'With --from-store: how far back to read [default: 7d]' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l tick -d 'Time between simulated checks [default: the config\'s check_time]' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l ready -d 'How long a rise takes to serve (pods must start); a fall is at once' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l start -d 'Where the scored replay starts: RFC 3339, or local time in the config\'s timezone [default: the first sample]. Earlier samples are replayed too, as the history the first runs read' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l set -d 'Override a config key with a YAML value, validated like the file: `headroom_percent=10`, `forecast.mode=scale` (nested keys with dots); `prereq_capacity=N` takes the prerequisites as met up to tier N only. Repeatable' -r
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l svg -d 'Write the chart (users, the serving tier, changes, schedule windows, under-provisioned minutes) as SVG to FILE' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -s c -l config -d 'Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]' -r -F
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -s o -l output -d 'Output format on stdout; logs always go to stderr' -r -f -a "table\t'For people'
json\t'One JSON document, for CI and scripts'"
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l from-store -d 'Replay the users the store\'s own `check` runs read (read-only)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -l dry-run -d 'Read everything, change nothing: no HPA patch, no record, no notification. Prints the plan'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand help; and not __fish_seen_subcommand_from check upgrade status tiers schedules simulate help" -f -a "check" -d 'One control pass: read users, pick the tier, check prerequisites, patch the HPAs, record, notify. What cron runs'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand help; and not __fish_seen_subcommand_from check upgrade status tiers schedules simulate help" -f -a "upgrade" -d 'Move to the tier of exactly CAPACITY (e.g. before a known event)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand help; and not __fish_seen_subcommand_from check upgrade status tiers schedules simulate help" -f -a "status" -d 'Where things stand: current tier, each HPA, prerequisites, hold, schedule windows, the forecast, last runs'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand help; and not __fish_seen_subcommand_from check upgrade status tiers schedules simulate help" -f -a "tiers" -d 'The validated tier table, inherited prerequisites filled in'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand help; and not __fish_seen_subcommand_from check upgrade status tiers schedules simulate help" -f -a "schedules" -d 'The scheduled windows of the next days, from the config alone (no network)'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand help; and not __fish_seen_subcommand_from check upgrade status tiers schedules simulate help" -f -a "simulate" -d 'Replay users through the policy offline: the tiers `check` would have chosen, scored against the oracle and the static peak tier'
complete -c hpa-tier -n "__fish_hpa_tier_using_subcommand help; and not __fish_seen_subcommand_from check upgrade status tiers schedules simulate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
