// `loa-bench preempt`: how fast an emergency alert takes over. While a
// SCHEDULED programme plays to N wire destinations and to real loa-speaker
// processes, RaiseAlert goes to the province through the control socket; the
// bench measures, from just before the request is written, (a) the first
// alert packet leaving for each wire destination (AF_PACKET capture on the
// veth, kernel timestamps), (b) the first alert audio decoded by each
// speaker (its --switch-log) and (c) each speaker's confirmation as seen
// through GetAlertStatus.
#pragma once

namespace CLI {
class App;
}

namespace loa::bench {

// Registers the `preempt` subcommand; when it runs it stores its exit code.
void add_preempt_scenario(CLI::App& app, int& exit_code);

}  // namespace loa::bench
