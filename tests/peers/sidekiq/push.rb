# Pushes SlowJob jobs with Sidekiq's own client and prints their jids, one a line.
#
# REDIS_URL=<url> ruby push.rb <queue> <seconds>...     (each runs for that many seconds)
# REDIS_URL=<url> ruby push.rb <queue> in:<delay> <seconds>...   (perform_in: scheduled)
require_relative "worker"

queue = ARGV.shift
delay = ARGV.first&.start_with?("in:") ? Float(ARGV.shift.delete_prefix("in:")) : nil
ARGV.each do |seconds|
  options = { "class" => SlowJob, "queue" => queue, "args" => [Float(seconds)] }
  options["at"] = Time.now.to_f + delay if delay
  puts Sidekiq::Client.push(options)
end
