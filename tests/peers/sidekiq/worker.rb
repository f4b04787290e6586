# The job class the sidekiq source's tests run (crates/sources/tests/sidekiq_source.rs), loaded
# by `sidekiq -r ./worker.rb` (Debian's Sidekiq 6.4.1) and by push.rb.
require "sidekiq"

# Works for `seconds`: long enough for the test to read the job in flight.
class SlowJob
  include Sidekiq::Worker

  def perform(seconds)
    sleep(seconds)
  end
end
