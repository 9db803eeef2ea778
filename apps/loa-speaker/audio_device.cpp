#include "loa-speaker/audio_device.h"

#include <portaudio.h>

#include <charconv>
#include <cstring>
#include <span>
#include <stdexcept>

namespace loa::speaker {

namespace {

void check(PaError err, const char* what) {
    if (err != paNoError) throw std::runtime_error(std::string(what) + ": " + Pa_GetErrorText(err));
}

int audio_callback(const void* /*input*/, void* output, unsigned long frames,
                   const PaStreamCallbackTimeInfo* /*time_info*/, PaStreamCallbackFlags /*flags*/,
                   void* user) {
    static_cast<AudioOutput*>(user)->fill(std::span<float>(static_cast<float*>(output), frames));
    return paContinue;
}

}  // namespace

PortAudioLibrary::PortAudioLibrary() { check(Pa_Initialize(), "PortAudio initialisation"); }

PortAudioLibrary::~PortAudioLibrary() { Pa_Terminate(); }

std::string PortAudioLibrary::list_output_devices() const {
    std::string out;
    const int count = Pa_GetDeviceCount();
    const PaDeviceIndex def = Pa_GetDefaultOutputDevice();
    for (int i = 0; i < count; ++i) {
        const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
        if (info == nullptr || info->maxOutputChannels < 1) continue;
        const PaHostApiInfo* api = Pa_GetHostApiInfo(info->hostApi);
        out += std::to_string(i) + ": " + info->name;
        if (api != nullptr) out += std::string(" (") + api->name + ")";
        if (i == def) out += " [default]";
        out += "\n";
    }
    return out;
}

int PortAudioLibrary::find_output_device(const std::string& name_or_index) const {
    if (name_or_index.empty()) {
        const PaDeviceIndex def = Pa_GetDefaultOutputDevice();
        if (def == paNoDevice) throw std::runtime_error("no default audio output device");
        return def;
    }
    const int count = Pa_GetDeviceCount();
    int index = -1;
    const char* first = name_or_index.data();
    const char* last = first + name_or_index.size();
    const auto [ptr, ec] = std::from_chars(first, last, index);
    if (ec == std::errc{} && ptr == last) {
        const PaDeviceInfo* info = index >= 0 && index < count ? Pa_GetDeviceInfo(index) : nullptr;
        if (info == nullptr || info->maxOutputChannels < 1) {
            throw std::runtime_error("no audio output device with index " + name_or_index);
        }
        return index;
    }
    for (int i = 0; i < count; ++i) {
        const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
        if (info != nullptr && info->maxOutputChannels >= 1 && std::strstr(info->name, name_or_index.c_str())) {
            return i;
        }
    }
    throw std::runtime_error("no audio output device matching '" + name_or_index + "'");
}

AudioOutput::AudioOutput(int device, FloatRing& ring, unsigned long frames_per_buffer) : ring_(ring) {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(device);
    if (info == nullptr) throw std::runtime_error("invalid audio device index " + std::to_string(device));
    PaStreamParameters params{};
    params.device = device;
    params.channelCount = 1;
    params.sampleFormat = paFloat32;
    params.suggestedLatency = info->defaultLowOutputLatency;
    params.hostApiSpecificStreamInfo = nullptr;
    PaStream* stream = nullptr;
    check(Pa_OpenStream(&stream, nullptr, &params, 48000.0, frames_per_buffer, paClipOff,
                        &audio_callback, this),
          "opening audio output");
    stream_ = stream;
}

AudioOutput::~AudioOutput() {
    stop();
    if (stream_ != nullptr) Pa_CloseStream(static_cast<PaStream*>(stream_));
}

void AudioOutput::start() { check(Pa_StartStream(static_cast<PaStream*>(stream_)), "starting audio output"); }

void AudioOutput::stop() noexcept {
    if (stream_ != nullptr && Pa_IsStreamActive(static_cast<PaStream*>(stream_)) == 1) {
        Pa_StopStream(static_cast<PaStream*>(stream_));
    }
}

void AudioOutput::fill(std::span<float> out) noexcept {
    const std::size_t got = ring_.read(out);
    if (got < out.size()) {
        std::memset(out.data() + got, 0, (out.size() - got) * sizeof(float));
        underruns_.fetch_add(1, std::memory_order_relaxed);
    }
}

}  // namespace loa::speaker
